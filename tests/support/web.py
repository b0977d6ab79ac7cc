"""httpx's one-call helpers (``get``, ``post``...) for tests, with the process's one TLS
context (``shared.wire.tls``, as the gateway's own outbound calls).

Each ``httpx.get`` builds a ``Client`` whose TLS context loads the CA bundle: ~40 ms of CPU
per call on these machines, whether or not the URL is https. The suite polls in loops
(``wait_for``) and fires bursts, so that was most of a core spent on certificates nobody
uses. These keep httpx's semantics (a fresh connection per call, so a killed server is never
reached through a stale pooled socket) and pass one context built once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from shared.wire.tls import shared_ssl_context as _tls


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, verify=_tls(), **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, verify=_tls(), **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, verify=_tls(), **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.put(url, verify=_tls(), **kwargs)


def patch(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.patch(url, verify=_tls(), **kwargs)


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.delete(url, verify=_tls(), **kwargs)


@contextmanager
def stream(method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
    with httpx.stream(method, url, verify=_tls(), **kwargs) as resp:
        yield resp

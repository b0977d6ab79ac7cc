"""One verifying TLS context per process, for every outbound httpx client and call.

Building one loads the CA bundle (~40 ms of CPU on these machines). httpx builds a fresh
one for each ``Client`` and each one-call helper (``httpx.get``), so a provider's shards,
each health probe and each poll of the config API paid it again; they all pass this one.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

"""Sharded httpx clients for one provider.

httpx/httpcore's pool bookkeeping costs O(open connections) per request: profiled on a
2-core VM of the same kind as the benchmark machines, it took 61% of a gevent worker's
samples with 500 calls in flight, and 100 sharded clients doubled to tripled throughput.
Spreading the provider's connections over several small clients keeps each pool short;
callers pick a shard round-robin.
"""

from __future__ import annotations

import functools
import itertools
import math
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

import httpcore
import httpx

from shared.wire.tls import shared_ssl_context

CONNECTIONS_PER_SHARD = 10
# httpx writes a request's headers and body separately; without TCP_NODELAY the body waits
# for the server's delayed ACK (~40 ms on Linux). curl sets it for the same reason.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class _CoalescingStream(httpcore.NetworkStream):
    """A connection's writes held until it reads: a request's head and body leave in one
    ``send`` (httpcore writes them apart: two syscalls, the costliest step on these VMs)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._pending: list[bytes] = []

    def _flush(self, timeout: float | None) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._inner.write(data, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush(timeout)
        return self._inner.read(max_bytes, timeout)

    def close(self) -> None:
        self._pending.clear()
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._flush(timeout)
        return _CoalescingStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable":  # asked before each reuse of a kept-alive connection
            sock = self._inner.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                return _readable_now(sock)
        return self._inner.get_extra_info(info)


@functools.lru_cache(maxsize=256)
def _url(url: str) -> httpx.URL:
    """A provider's URL parsed once (httpx parses a str on every request: 5% of a call)."""
    return httpx.URL(url)


def _unpatched_poll() -> Callable[[], Any]:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover (gevent is a dependency)
        return select.poll
    return cast(Callable[[], Any], monkey.get_original("select", "poll"))


_POLL = _unpatched_poll()


def _readable_now(sock: socket.socket) -> bool:
    """Whether the peer closed (or wrote to) an idle connection: httpcore's own check, with
    the operating system's ``poll`` rather than gevent's. Under gevent's patching httpcore's
    ``select.poll().poll(0)`` starts watchers and turns the hub's loop once: 15% of a call's
    samples (py-spy, sequential calls). A zero-timeout poll never blocks, so the original
    is safe in a greenlet."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = _POLL()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class CoalescingBackend(httpcore.SyncBackend):
    def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.NetworkStream:
        return _CoalescingStream(super().connect_tcp(*args, **kwargs))  # type: ignore[arg-type]

    def connect_unix_socket(self, *args: object, **kwargs: object) -> httpcore.NetworkStream:
        stream = super().connect_unix_socket(*args, **kwargs)  # type: ignore[arg-type]
        return _CoalescingStream(stream)


def _transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(
        verify=shared_ssl_context(), limits=limits, retries=0, socket_options=NODELAY
    )
    # httpx.HTTPTransport takes no network backend; its httpcore pool does (public httpcore
    # API). tests/unit/workers/providers/test_pool.py fails if the attribute moves in an upgrade.
    transport._pool._network_backend = CoalescingBackend()
    return transport


class ShardedClient:
    def __init__(self, max_connections: int, shards: int = 0, timeout: float = 60.0) -> None:
        if shards <= 0:
            shards = max(1, math.ceil(max_connections / CONNECTIONS_PER_SHARD))
        per_shard = max(1, math.ceil(max_connections / shards))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self.clients = [
            httpx.Client(
                limits=limits,
                timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                # Retries belong to the gateway's policy, never to the transport.
                transport=_transport(limits),
            )
            for _ in range(shards)
        ]
        self._next = itertools.cycle(range(shards))

    def pick(self) -> httpx.Client:
        return self.clients[next(self._next)]

    def post(
        self, url: str, content: bytes, headers: dict[str, str], timeout: httpx.Timeout
    ) -> httpx.Response:
        """POST straight to a shard's transport and read the whole answer.

        ``Client.post`` adds auth, redirect, cookie and event-hook layers this call never
        uses (about a fifth of the CPU of a call here); the transport still maps httpcore's
        errors to httpx's, so callers catch the same exceptions.
        """
        client = self.pick()
        request = httpx.Request(
            "POST",
            _url(url),
            content=content,
            headers=headers,
            extensions={"timeout": timeout.as_dict()},
        )
        response = client._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        response.request = request
        return response

    def close(self) -> None:
        for client in self.clients:
            client.close()

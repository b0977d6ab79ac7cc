"""Sharded httpx clients for one provider.

httpx/httpcore's pool bookkeeping costs O(open connections) per request
(../shared/reference/performance.md: 61% of worker samples at 500 in flight). Spreading the
provider's connections over several small clients keeps each pool short; callers pick a
shard round-robin.
"""

from __future__ import annotations

import functools
import itertools
import math
import socket
import ssl

import httpx

CONNECTIONS_PER_SHARD = 10
# httpx writes a request's headers and body separately; without TCP_NODELAY the body waits
# for the server's delayed ACK (~40 ms on Linux). curl sets it for the same reason.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every shard of every provider in this process.

    Each ``httpx.HTTPTransport`` otherwise builds its own and loads the CA bundle (~37 ms
    here): with 50 shards a provider that cost 1.9 s of a worker's start-up, 4 providers 8 s.
    """
    return httpx.create_ssl_context()


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
                transport=httpx.HTTPTransport(
                    verify=shared_ssl_context(), limits=limits, retries=0, socket_options=NODELAY
                ),
            )
            for _ in range(shards)
        ]
        self._next = itertools.cycle(range(shards))

    def pick(self) -> httpx.Client:
        return self.clients[next(self._next)]

    def close(self) -> None:
        for client in self.clients:
            client.close()

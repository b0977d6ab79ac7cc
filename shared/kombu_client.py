"""One Redis client per kombu channel instead of one per ack, fetch bookkeeping or publish.

kombu's Redis transport builds a new ``redis.Redis`` for every ``conn_or_acquire()`` without
a client: each ack, each message's unacked bookkeeping (``QoS.append``) and each publish. With
redis-py 8 that constructor copies its response-callback table (``CaseInsensitiveDict``):
4.4% of a loaded worker's samples and 4.2% of the API's (py-spy, c=64), for nothing, since
the client only borrows a connection from the channel's pool. The client is kept per
channel and pool (a reconnect makes a new pool, and so a new client); ``redis.Redis`` over a
pool is safe to share between greenlets and threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_CACHE = "_gateway_client"


def install() -> None:
    from kombu.transport import redis as kombu_redis

    channel = kombu_redis.Channel
    if getattr(channel.conn_or_acquire, "_gateway_reuse", False):
        return

    @contextmanager
    def conn_or_acquire(self: Any, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        cached = getattr(self, _CACHE, None)
        if cached is None or cached[0] is not pool:
            cached = (pool, self._create_client())
            setattr(self, _CACHE, cached)
        yield cached[1]

    conn_or_acquire._gateway_reuse = True  # type: ignore[attr-defined]
    channel.conn_or_acquire = conn_or_acquire  # type: ignore[method-assign]

"""One way to build a Redis client: a bounded, blocking connection pool.

Under gevent hundreds of greenlets share a process; an unbounded pool would open a
connection per concurrent caller. A ``BlockingConnectionPool`` makes callers wait for a free
connection instead (DESIGN.md "Known traps").
"""

from __future__ import annotations

import redis

from shared.autopipeline import AutoPipelineRedis

DEFAULT_MAX_CONNECTIONS = 64


def make_redis(
    url: str, max_connections: int = DEFAULT_MAX_CONNECTIONS, autopipeline: bool = False
) -> redis.Redis:
    """``autopipeline``: concurrent callers' commands share round trips
    (``shared/autopipeline.py``); never for a client that issues blocking commands."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=True,
        socket_keepalive=True,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )
    if autopipeline:
        return AutoPipelineRedis(connection_pool=pool)
    return redis.Redis(connection_pool=pool)

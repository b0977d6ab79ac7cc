"""One way to build a Redis client: a bounded, blocking connection pool.

Under gevent hundreds of greenlets share a process; an unbounded pool would open a
connection per concurrent caller. A ``BlockingConnectionPool`` makes callers wait for a free
connection instead (docs/architecture.md "Known traps").
"""

from __future__ import annotations

import redis

from shared.autopipeline import AutoPipelineRedis

DEFAULT_MAX_CONNECTIONS = 64


def make_redis(
    url: str,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    autopipeline: bool = False,
    decode: bool = True,
) -> redis.Redis:
    """``autopipeline``: concurrent callers' commands share round trips
    (``shared/autopipeline.py``); never for a client that issues blocking commands.
    ``decode=False``: answers as bytes (file contents)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=decode,
        socket_keepalive=True,
        socket_connect_timeout=5,
        health_check_interval=30,
        # Also makes redis-py send a command (a whole pipeline) once more on a new connection
        # when the first fails, ConnectionError included: a reply lost after Redis ran the
        # command runs it twice. So every script in shared/lua/ is safe to repeat, each
        # saying how in its header's "Repeat:" line (tests/integration/test_script_repeats.py).
        retry_on_timeout=True,
    )
    if autopipeline:
        return AutoPipelineRedis(connection_pool=pool)
    return redis.Redis(connection_pool=pool)


def bytes_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server and database as ``client`` that answers in bytes (for a
    given client, as in-process tests pass: fakeredis keeps its server in the kwargs)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )

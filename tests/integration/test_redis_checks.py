"""A Redis that could lose accepted jobs, read with INFO on a real redis-server: an evicting
``maxmemory-policy`` stops ``llm-gateway api`` and ``llm-gateway worker`` from starting unless
``redis.allow_eviction`` says so; it, and no AOF without a replica, make ``/health/ready``
degraded (still 200) and ``/v1/health`` warn."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from flask.testing import FlaskClient

from gateway_api.services import Services
from gateway_cli.embedded_redis import EmbeddedRedis, free_port
from shared.redis_checks import CachedCheck
from tests.support import web
from tests.support.api import make_app
from tests.support.clients import ADMIN_KEY
from tests.support.stack import KEYS, Proc, port_open, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
EVICTING = "maxmemory-policy is allkeys-lru"
NO_AOF = "appendonly is off and no replica is connected"


def _server(tmp_path: Path, **settings: Any) -> Iterator[EmbeddedRedis]:
    s = EmbeddedRedis(tmp_path / "redis", **{"appendfsync": "everysec", **settings}).start()
    yield s
    s.stop()


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    yield from _server(tmp_path, maxmemory_policy="allkeys-lru")


@pytest.fixture
def no_aof(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    yield from _server(tmp_path, appendonly=False)


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    yield from _server(tmp_path)


# -- the processes refuse to start ----------------------------------------------------------


def _process(tmp_path: Path, server: EmbeddedRedis, name: str, *args: str, **redis: Any) -> Proc:
    config = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "redis": {"url": server.url, "prefix": KEYS.prefix, **redis},
        "worker": {"interactive_share": 0.0},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "GATEWAY_CONFIG")
    }
    env["GATEWAY_CONFIG_FILE"] = str(path)
    return Proc(name, list(args), env, tmp_path)


def test_api_refuses_to_start_on_an_evicting_redis_naming_the_setting(
    tmp_path: Path, evicting: EmbeddedRedis
) -> None:
    port = free_port()
    proc = _process(tmp_path, evicting, "api", "api", "--port", str(port))
    try:
        wait_for(lambda: not proc.alive() or port_open(port), 60, "the api to exit or serve")
        assert not proc.alive(), "the api serves on an evicting Redis"
    finally:
        proc.stop()
    assert proc.popen.returncode != 0
    text = proc.log_path.read_text()
    assert "maxmemory-policy" in text and "allkeys-lru" in text, text
    assert "redis.allow_eviction" in text, text


def test_worker_refuses_to_start_on_an_evicting_redis_naming_the_setting(
    tmp_path: Path, evicting: EmbeddedRedis
) -> None:
    proc = _process(tmp_path, evicting, "worker", "worker", "--concurrency", "2")
    r = redis.Redis.from_url(evicting.url)
    beat = KEYS.worker_heartbeat(f"{socket.gethostname()}:{proc.pid}")
    try:
        wait_for(lambda: not proc.alive() or r.exists(beat), 60, "the worker to exit or beat")
        assert not proc.alive(), "the worker runs on an evicting Redis"
    finally:
        proc.stop()
        r.close()
    assert proc.popen.returncode != 0
    text = proc.log_path.read_text()
    assert "maxmemory-policy" in text and "redis.allow_eviction" in text, text


def test_api_starts_on_an_evicting_redis_when_allowed_and_says_so(
    tmp_path: Path, evicting: EmbeddedRedis
) -> None:
    port = free_port()
    proc = _process(tmp_path, evicting, "api", "api", "--port", str(port), allow_eviction=True)
    try:
        wait_for(lambda: not proc.alive() or port_open(port), 60, "the api to serve")
        assert proc.alive(), proc.tail()
        ready = web.get(f"http://127.0.0.1:{port}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["degraded"] is True
        assert any(EVICTING in reason for reason in ready.json()["reasons"]), ready.json()
    finally:
        proc.stop()
    text = proc.log_path.read_text()
    assert "warning" in text.lower() and EVICTING in text, text


# -- what the status routes say --------------------------------------------------------------


def _app(server: EmbeddedRedis) -> tuple[FlaskClient, redis.Redis]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    app = make_app(client=client, redis={"url": server.url, "prefix": KEYS.prefix})
    return app.test_client(), client


def _beat(r: redis.Redis) -> None:
    """A live worker's heartbeat, so that Redis's settings are the only thing to report."""
    r.set(KEYS.worker_heartbeat("w:1"), json.dumps({"ts": time.time()}), ex=60)
    r.zadd(KEYS.workers, {"w:1": time.time()})


def test_ready_reports_an_evicting_redis_as_degraded_with_200(evicting: EmbeddedRedis) -> None:
    app, r = _app(evicting)
    _beat(r)
    ready = app.get("/health/ready")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready" and body["fleet_ready"] is True
    assert body["degraded"] is True
    assert len(body["reasons"]) == 1 and EVICTING in body["reasons"][0], body
    warnings = app.get("/v1/health", headers=ADMIN).get_json()["gateway"]["warnings"]
    assert any(EVICTING in w for w in warnings), warnings
    r.close()


def test_ready_reports_a_redis_without_aof_or_replica_as_degraded_with_200(
    no_aof: EmbeddedRedis,
) -> None:
    app, r = _app(no_aof)
    _beat(r)
    ready = app.get("/health/ready")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["degraded"] is True
    assert len(body["reasons"]) == 1 and NO_AOF in body["reasons"][0], body
    r.close()


def test_ready_is_not_degraded_on_a_redis_that_keeps_accepted_jobs(
    durable: EmbeddedRedis,
) -> None:
    app, r = _app(durable)
    _beat(r)
    body = app.get("/health/ready").get_json()
    assert body["degraded"] is False and body["reasons"] == [], body
    assert app.get("/v1/health", headers=ADMIN).get_json()["gateway"]["warnings"] == []
    r.close()


def test_probes_read_the_redis_settings_once_per_interval(durable: EmbeddedRedis) -> None:
    app, r = _app(durable)
    services: Services = app.application.extensions["gateway"]
    now = [1000.0]
    services.redis_check = CachedCheck(max_age_s=5, clock=lambda: now[0])

    own = [0]

    def info_calls() -> int:
        """INFO commands the app sent (not counting this function's own INFO commandstats)."""
        stats = r.info("commandstats").get("cmdstat_info") or {}
        own[0] += 1
        return int(stats.get("calls", 0)) - (own[0] - 1)

    r.config_resetstat()
    for _ in range(20):
        assert app.get("/health/ready").status_code == 200
    one_reading = info_calls()
    assert one_reading >= 1
    for _ in range(20):
        app.get("/health/ready")
        app.get("/v1/health", headers=ADMIN)
    assert info_calls() == one_reading
    now[0] += 6
    app.get("/health/ready")
    assert info_calls() == 2 * one_reading
    r.close()

"""The status routes (``/health/ready``, ``/v1/health``, ``/dashboard/data``) find the workers
through the heartbeat index, never by scanning the keyspace, so they cost the same with 10 keys
in Redis or millions; and ``/v1/health`` shows an admin key more than a client key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from gateway_api.services import Services
from gateway_cli.embedded_redis import EmbeddedRedis
from shared.config.loader import load_config
from tests.support.api import make_app
from tests.support.clients import ADMIN_KEY, CLIENT_KEY
from tests.support.stack import KEYS, wait_for
from workers.context import WorkerContext
from workers.lifecycle import start_heartbeat, worker_name

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
UNRELATED_KEYS = 50_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own: its command statistics count only what the test does."""
    s = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec").start()
    yield s
    s.stop()


def _config(url: str) -> dict[str, Any]:
    return {"redis": {"url": url, "prefix": KEYS.prefix}, "worker": {"heartbeat_s": 1}}


@pytest.fixture
def api(server: EmbeddedRedis) -> Iterator[tuple[FlaskClient, redis.Redis]]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    app = make_app(client=client, **_config(server.url))
    yield app.test_client(), client
    client.close()


@pytest.fixture
def worker(server: EmbeddedRedis) -> Iterator[WorkerContext]:
    """This process heartbeating as a worker would (``workers.lifecycle.start_heartbeat``)."""
    doc = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        **_config(server.url),
    }
    ctx = WorkerContext.build(load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}))
    stop = start_heartbeat(ctx)
    wait_for(lambda: ctx.redis.exists(KEYS.worker_heartbeat(worker_name())), 10, "a heartbeat")
    yield ctx
    stop.set()
    wait_for(lambda: not ctx.redis.exists(KEYS.worker_heartbeat(worker_name())), 10, "goodbye")
    ctx.redis.close()


def _fill(client: redis.Redis, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for start in range(0, n, 1000):
        pipe.mset({f"unrelated:{i}": "x" for i in range(start, min(n, start + 1000))})
    pipe.execute()


def test_status_routes_never_scan_the_keyspace_and_still_list_the_workers(
    api: tuple[FlaskClient, redis.Redis], worker: WorkerContext
) -> None:
    app, r = api
    _fill(r, UNRELATED_KEYS)
    assert r.dbsize() > UNRELATED_KEYS
    r.config_resetstat()

    ready = app.get("/health/ready")
    health = app.get("/v1/health", headers=ADMIN)
    dashboard = app.get("/dashboard/data", headers=ADMIN)

    ran = r.info("commandstats")
    assert ran, "commandstats answered nothing"
    assert not {"cmdstat_scan", "cmdstat_keys"} & set(ran), sorted(ran)
    assert ready.status_code == 200 and ready.get_json()["fleet_ready"] is True
    processes = health.get_json()["workers"]
    assert processes["count"] == 1
    assert [p["id"] for p in processes["processes"]] == [worker_name()]
    assert [w["id"] for w in dashboard.get_json()["workers"]] == [worker_name()]


def test_a_stopping_worker_leaves_the_index_at_once(
    api: tuple[FlaskClient, redis.Redis], server: EmbeddedRedis
) -> None:
    app, r = api
    doc = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        # Beats far apart: the worker leaves long before its heartbeat could expire.
        "redis": {"url": server.url, "prefix": KEYS.prefix},
        "worker": {"heartbeat_s": 600},
    }
    ctx = WorkerContext.build(load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}))
    stop = start_heartbeat(ctx)
    wait_for(lambda: r.zscore(KEYS.workers, worker_name()) is not None, 10, "the index entry")
    assert app.get("/v1/health", headers=ADMIN).get_json()["workers"]["count"] == 1
    stop.set()
    wait_for(lambda: r.zscore(KEYS.workers, worker_name()) is None, 10, "the worker to leave")
    assert not r.exists(KEYS.worker_heartbeat(worker_name()))
    assert app.get("/v1/health", headers=ADMIN).get_json()["workers"]["count"] == 0
    ctx.redis.close()


def test_a_worker_gone_without_a_goodbye_is_not_listed_and_is_trimmed(
    api: tuple[FlaskClient, redis.Redis], worker: WorkerContext
) -> None:
    app, r = api
    # A worker killed a moment ago: still in the index, its heartbeat already expired.
    r.zadd(KEYS.workers, {"gone:1": time.time()})
    # One killed long ago: its entry older than any heartbeat's TTL.
    r.zadd(KEYS.workers, {"gone:2": time.time() - 3600})
    listed = app.get("/v1/health", headers=ADMIN).get_json()["workers"]
    assert [p["id"] for p in listed["processes"]] == [worker_name()]
    # The next beat (1 s apart here) trims the old entry.
    wait_for(lambda: r.zscore(KEYS.workers, "gone:2") is None, 10, "the stale entry trimmed")


def test_ready_counts_beats_without_listing_workers(
    api: tuple[FlaskClient, redis.Redis], server: EmbeddedRedis
) -> None:
    app, r = api
    body = app.get("/health/ready").get_json()
    assert body["fleet_ready"] is False and "no live worker heartbeat" in body["reasons"]
    r.config_resetstat()
    r.set(KEYS.worker_heartbeat("w:1"), json.dumps({"ts": time.time()}), ex=5)
    r.zadd(KEYS.workers, {"w:1": time.time()})
    body = app.get("/health/ready").get_json()
    assert body["fleet_ready"] is True and "no live worker heartbeat" not in body["reasons"]
    ran = set(r.info("commandstats"))
    assert "cmdstat_zcount" in ran
    assert not {"cmdstat_scan", "cmdstat_keys", "cmdstat_zrangebyscore", "cmdstat_mget"} & ran


def test_v1_health_shows_worker_names_and_provider_errors_to_an_admin_key_only(
    api: tuple[FlaskClient, redis.Redis], worker: WorkerContext
) -> None:
    app, _ = api
    services: Services = app.application.extensions["gateway"]
    error_text = "upstream said: quota of project prj-internal-7 exhausted"
    services.stores.health.mark("p", False, error_text)

    admin = app.get("/v1/health", headers=ADMIN)
    client = app.get("/v1/health", headers=CLIENT)

    assert admin.status_code == client.status_code == 200
    seen = admin.get_json()
    assert [p["id"] for p in seen["workers"]["processes"]] == [worker_name()]
    assert seen["providers"]["p"]["last_error"] == error_text
    shown = client.get_json()
    assert shown["workers"]["count"] == 1 and len(shown["workers"]["processes"]) == 1
    assert shown["providers"]["p"]["healthy"] is False
    text = client.get_data(as_text=True)
    assert worker_name() not in text and error_text not in text


def test_v1_health_still_needs_a_key() -> None:
    app = make_app().test_client()
    assert app.get("/v1/health").status_code == 401
    wrong = {"Authorization": "Bearer sk-not-a-key-" + "z" * 24}
    assert app.get("/v1/health", headers=wrong).status_code == 401


def test_redis_memory_is_shown_on_metrics_and_v1_health(
    api: tuple[FlaskClient, redis.Redis],
) -> None:
    http, r = api
    used = int(r.info("memory")["used_memory"])
    scraped = http.get("/metrics").get_data(as_text=True)
    line = next(x for x in scraped.splitlines() if x.startswith("gateway_redis_used_memory_bytes"))
    assert float(line.split()[-1]) == pytest.approx(used, rel=0.5)
    assert "gateway_redis_memory_limit_bytes" in scraped
    memory = http.get("/v1/health", headers=CLIENT).get_json()["gateway"]["redis_memory"]
    assert memory["used_bytes"] == pytest.approx(used, rel=0.5)
    assert memory["limit_bytes"] > memory["used_bytes"]  # maxmemory unset: the machine's
    assert memory["growth_bytes_per_s"] is None  # no five minutes of readings yet

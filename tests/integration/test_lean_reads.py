"""Polls and lists read only what their answer needs: counted by the real redis-server itself
(``INFO``: bytes it sent, calls per command), with the API in-process. A poll of a job whose
request is 1 MB must not move that request; a page of 20 from an index of tens of thousands of
ids must not read the index. The answers stay what a read of the whole record gives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from flask import Flask, jsonify

from gateway_api.responses import gateway_headers
from gateway_api.services import Services
from gateway_api.stream_relay import START, open_stream, replay
from gateway_cli.embedded_redis import EmbeddedRedis
from shared.state import paging
from shared.state.job_record import Job, encode_fields
from shared.webhooks import Delivery
from tests.support.api import H, make_app
from tests.support.clients import ADMIN_KEY
from tests.support.jobs import queued_job
from tests.support.stack import KEYS

OWNER = "team-a"  # CLIENT_KEY's id
BIG = 1_000_000  # bytes of prompt in each job's request
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@dataclass
class Traffic:
    """What the Redis server sent to all its clients, and the calls of each command, between
    entering and leaving (the test is its only user meanwhile)."""

    r: redis.Redis
    sent: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def _read(self) -> tuple[int, dict[str, int]]:
        stats: Any = self.r.info("stats")
        commands: Any = self.r.info("commandstats")
        return int(stats["total_net_output_bytes"]), {
            name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in commands.items()
        }

    def __enter__(self) -> Traffic:
        self._before = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        sent, calls = self._read()
        self.sent = sent - self._before[0]
        self.calls = {k: n - self._before[1].get(k, 0) for k, n in calls.items()}


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of this module's own: ``INFO`` counts every client of a server, and the
    session's is shared with stacks whose workers run their duties meanwhile."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("lean-redis"), appendfsync="everysec").start()
    yield server
    server.stop()


@pytest.fixture
def r(private_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def app(r: redis.Redis) -> Flask:
    return make_app(client=r)


def services_of(app: Flask) -> Services:
    services: Services = app.extensions["gateway"]
    return services


def big_job(services: Services, status: str = "queued", **fields: Any) -> Job:
    """A job of OWNER's whose request carries BIG bytes, in Redis; ``fields`` are written over
    its record as the workers would (result, attempts, error, ...)."""
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "x" * BIG}],
        **fields.pop("request_extra", {}),
    }
    job = queued_job(owner=OWNER, request=request, status=status)
    services.stores.jobs.create(job)
    if fields:
        services.redis.hset(KEYS.job(job.id), mapping=encode_fields(fields))
    return job


def ended_fields(n: int = 0) -> dict[str, Any]:
    now = time.time()
    return {
        "result": {**ANSWER, "id": f"chatcmpl-{n}"},
        "started_at": now - 1,
        "finished_at": now,
        "provider": "p",
        "attempts": [
            {
                "provider": "p",
                "model": "x",
                "started_at": now - 1,
                "duration_ms": 900,
                "outcome": "success",
                "error": None,
            }
        ],
        "metadata": {"n": str(n)},
        "cost_micro": 1234,
    }


def whole(services: Services, job_id: str) -> Job:
    """The job as the whole record (HGETALL) gives it: what every answer was built from."""
    job = services.stores.jobs.get(job_id)
    assert job is not None
    return job


def as_answered(app: Flask, job: Job) -> tuple[bytes, dict[str, str]]:
    """The body and gateway headers GET /v1/jobs/{id} answers for ``job``."""
    with app.test_request_context():
        resp = gateway_headers(jsonify(job.to_public()), job)
        return resp.get_data(), gateway_headers_of(resp.headers)


def gateway_headers_of(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("X-Gateway-")}


# -- jobs ------------------------------------------------------------------------------------


def test_a_long_poll_on_a_running_job_reads_its_status_not_its_request(
    app: Flask, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway_api.waiter.RECHECK_S", 0.05)  # many re-reads within the wait
    services = services_of(app)
    job = big_job(services, status="running", started_at=time.time())
    client = app.test_client()
    with Traffic(r) as traffic:
        resp = client.get(f"/v1/jobs/{job.id}?wait=0.5", headers=H)
    assert resp.status_code == 200
    body, headers = as_answered(app, whole(services, job.id))
    assert resp.get_data() == body and gateway_headers_of(resp.headers) == headers
    assert traffic.sent < BIG / 20, traffic.sent
    assert traffic.calls.get("hgetall", 0) == 0


def test_a_long_poll_on_an_ended_job_answers_the_same_object_without_its_request(
    app: Flask, r: redis.Redis
) -> None:
    services = services_of(app)
    job = big_job(services, status="succeeded", **ended_fields())
    client = app.test_client()
    with Traffic(r) as traffic:
        resp = client.get(f"/v1/jobs/{job.id}?wait=5", headers=H)
    body, headers = as_answered(app, whole(services, job.id))
    assert resp.status_code == 200
    assert resp.get_data() == body and gateway_headers_of(resp.headers) == headers
    assert json.loads(body)["result"]["id"] == "chatcmpl-0"  # the whole object is there
    assert traffic.sent < BIG / 20, traffic.sent


def test_listing_jobs_reads_one_page_without_requests_and_answers_the_same_page(
    app: Flask, r: redis.Redis
) -> None:
    services = services_of(app)
    jobs = [big_job(services, status="succeeded", **ended_fields(n)) for n in range(3)]
    client = app.test_client()
    with Traffic(r) as traffic:
        first = client.get("/v1/jobs?limit=2", headers=H).get_json()
    assert traffic.sent < BIG / 20, traffic.sent
    second = client.get(f"/v1/jobs?limit=2&after={first['last_id']}", headers=H).get_json()
    newest = sorted(jobs, key=lambda j: j.created_at, reverse=True)
    want = [json.loads(as_answered(app, whole(services, j.id))[0]) for j in newest]
    assert first["data"] == want[:2] and first["has_more"] is True
    assert second["data"] == want[2:] and second["has_more"] is False


def test_jobs_created_at_the_same_instant_are_each_listed_once(app: Flask) -> None:
    store = services_of(app).stores.jobs
    now = time.time()
    made = {queued_job(owner=OWNER).id for _ in range(5)}
    for job_id in made:
        store.create(queued_job(owner=OWNER, id=job_id, created_at=now))
    seen: list[str] = []
    after = None
    while True:
        page, more = store.list_for_owner(OWNER, 2, after)
        seen += [j.id for j in page]
        if not more:
            break
        after = page[-1].id
    assert sorted(seen) == sorted(made)


def test_a_stream_waiting_for_its_first_chunk_polls_the_status_not_the_request(
    app: Flask, r: redis.Redis
) -> None:
    services = services_of(app)
    job = big_job(services, status="running")
    with Traffic(r) as traffic:
        opening = open_stream(services, job, START, time.time() + 0.7)
    assert opening.entries == [] and opening.ended is None  # waited the whole window
    assert traffic.sent < BIG / 20, traffic.sent


def test_a_stored_answer_replayed_as_a_stream_reads_the_request_once_for_its_usage_flag(
    app: Flask, r: redis.Redis
) -> None:
    services = services_of(app)
    job = big_job(
        services,
        status="succeeded",
        request_extra={"stream": True, "stream_options": {"include_usage": True}},
        **ended_fields(),
    )
    with Traffic(r) as traffic:
        resp = app.test_client().get(f"/v1/jobs/{job.id}/stream", headers=H)
        body = resp.get_data()
    assert resp.status_code == 200
    assert body == b"".join(replay(whole(services, job.id).result or {}, True))
    assert b'"usage"' in body  # the request asked for it, and was read to know
    assert traffic.sent < 1.5 * BIG, traffic.sent  # once, not on every read of the job


def test_the_dashboards_recent_failures_read_no_request(app: Flask, r: redis.Redis) -> None:
    services = services_of(app)
    error = {"type": "provider_error", "code": "upstream_error", "message": "boom"}
    failed = [big_job(services, status="failed", error=error, provider="p") for _ in range(3)]
    for job in failed:
        r.lpush(KEYS.recent_failed, job.id)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with Traffic(r) as traffic:
        resp = app.test_client().get("/dashboard/data", headers=admin)
    assert resp.status_code == 200
    shown = resp.get_json()["recent_failed"]
    assert [f["id"] for f in shown] == [j.id for j in reversed(failed)]
    assert shown[0] == {
        "id": failed[-1].id,
        "owner": OWNER,
        "model": "m",
        "provider": "p",
        "finished_at": None,
        "error": error,
    }
    assert traffic.sent < BIG / 20, traffic.sent


# -- indexes ---------------------------------------------------------------------------------


def delivery_fields(delivery: str, status: str, created_at: float) -> dict[str, str]:
    event = {"id": "evt_" + delivery[4:], "object": "event", "type": "job.succeeded"}
    return {
        "id": delivery,
        "owner": OWNER,
        "event_id": event["id"],
        "type": "job.succeeded",
        "url": "https://example.com/hook",
        "status": status,
        "payload": json.dumps({**event, "created_at": int(created_at), "data": {"id": "job_1"}}),
        "created_at": repr(created_at),
        "next_at": "",
        "attempts": "[]",
    }


def deliveries(r: redis.Redis, n: int, kept: int, failed: tuple[int, ...] = ()) -> list[str]:
    """``n`` deliveries in OWNER's index, newest first in the returned list; only the newest
    ``kept`` still have records (the rest expired), those at positions ``failed`` failed."""
    start = time.time() - n
    ids = [f"whd_{i:024d}" for i in range(n)]  # i: oldest first
    r.zadd(KEYS.owner_webhook_deliveries(OWNER), {d: start + i for i, d in enumerate(ids)})
    newest = ids[::-1]
    pipe = r.pipeline(transaction=False)
    for pos, d in enumerate(newest[:kept]):
        status = "failed" if pos in failed else "succeeded"
        pipe.hset(KEYS.webhook_delivery(d), mapping=delivery_fields(d, status, start + n - pos))
    pipe.execute()
    return newest


def test_a_page_of_deliveries_reads_a_page_of_the_index_not_all_of_it(
    app: Flask, r: redis.Redis
) -> None:
    newest = deliveries(r, 50_000, kept=100)
    index_bytes = sum(len(d) for d in newest)
    client = app.test_client()
    with Traffic(r) as traffic:
        got = client.get("/v1/webhook_deliveries?limit=20", headers=H).get_json()
    assert traffic.sent < index_bytes / 20, (traffic.sent, index_bytes)
    want = [
        Delivery.from_hash(r.hgetall(KEYS.webhook_delivery(d))).to_public() for d in newest[:40]
    ]
    assert got["data"] == want[:20] and got["has_more"] is True
    nxt = client.get(f"/v1/webhook_deliveries?limit=20&after={got['last_id']}", headers=H)
    assert nxt.get_json()["data"] == want[20:40]


def test_failed_deliveries_are_found_by_bounded_scans_whose_cursors_reach_every_one(
    app: Flask, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "SCAN_MOST", 2_000, raising=False)
    newest = deliveries(r, 50_000, kept=5_000, failed=(1_000, 4_500))
    index_bytes = sum(len(d) for d in newest)
    client = app.test_client()
    found: list[str] = []
    url, calls = "/v1/webhook_deliveries?status=failed&limit=20", 0
    while True:
        calls += 1
        with Traffic(r) as traffic:
            got = client.get(url, headers=H).get_json()
        assert traffic.sent < index_bytes / 5, (calls, traffic.sent, index_bytes)
        found += [d["id"] for d in got["data"]]
        if not got["has_more"]:
            break
        after = got["last_id"]  # a found delivery's id, or, with none found, where to go on
        assert after is not None
        url = f"/v1/webhook_deliveries?status=failed&limit=20&after={after}"
    assert found == [newest[1_000], newest[4_500]]
    assert calls <= 50_000 // 2_000 + 3  # each call moved on by a bound's worth at least


def test_deliveries_of_one_event_share_a_time_and_page_one_by_one(
    app: Flask, r: redis.Redis
) -> None:
    now = time.time()
    ids = [f"whd_{c * 24}" for c in "abc"]
    r.zadd(KEYS.owner_webhook_deliveries(OWNER), dict.fromkeys(ids, now))
    for d in ids:
        r.hset(KEYS.webhook_delivery(d), mapping=delivery_fields(d, "succeeded", now))
    client = app.test_client()
    seen, url = [], "/v1/webhook_deliveries?limit=1"
    while True:
        got = client.get(url, headers=H).get_json()
        seen += [d["id"] for d in got["data"]]
        if not got["has_more"]:
            break
        url = f"/v1/webhook_deliveries?limit=1&after={got['last_id']}"
    assert seen == sorted(ids, reverse=True)


def test_a_page_of_files_reads_a_page_of_the_index_not_all_of_it(
    app: Flask, r: redis.Redis
) -> None:
    n, kept = 20_000, 30
    start = time.time() - n
    ids = [f"file-{i:024x}" for i in range(n)]  # oldest first
    r.zadd(KEYS.owner_files(OWNER), {f: start + i for i, f in enumerate(ids)})
    newest = ids[::-1]
    for pos, f in enumerate(newest[:kept]):
        r.hset(
            KEYS.file(f),
            mapping={
                "id": f,
                "owner": OWNER,
                "bytes": 10 + pos,
                "created_at": int(start + n - pos),
                "filename": f"in-{pos}.jsonl",
                "purpose": "batch",
                "lines": 1,
            },
        )
    index_bytes = sum(len(f) for f in ids)
    client = app.test_client()
    with Traffic(r) as traffic:
        got = client.get("/v1/files?limit=20", headers=H).get_json()
    assert traffic.sent < index_bytes / 20, (traffic.sent, index_bytes)
    assert [f["id"] for f in got["data"]] == newest[:20] and got["has_more"] is True
    assert got["data"][0] == {
        "id": newest[0],
        "object": "file",
        "bytes": 10,
        "created_at": int(start + n),
        "filename": "in-0.jsonl",
        "purpose": "batch",
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }

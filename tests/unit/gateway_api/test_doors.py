"""Requests, errors, jobs and tokens counted per door (the API entry they came in by): the
Prometheus ``door`` label and the fleet-wide counts behind ``/v1/health`` and the dashboard.
In-process app over fakeredis, no worker."""

from __future__ import annotations

from dataclasses import replace

import fakeredis
import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from gateway_api.fleet_status import metric_summary
from shared import metrics
from shared.state.job_record import SUCCEEDED
from shared.state.jobs import JobStore
from tests.support.api import OK, H, make_app
from tests.support.jobs import queued_job
from tests.support.stack import KEYS
from workers.conclude import _count_tokens
from workers.outcome import Outcome

ASYNC = {**H, "Prefer": "respond-async"}


@pytest.fixture
def client() -> FlaskClient:
    return make_app().test_client()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(route: str, status: str, door: str) -> float:
    return sample(
        "gateway_http_requests_total", route=route, method="POST", status=status, door=door
    )


def latencies(route: str, door: str) -> float:
    return sample("gateway_http_request_duration_seconds_count", route=route, door=door)


def errors(door: str, status: str, kind: str) -> float:
    return sample("gateway_http_errors_total", door=door, status=status, type=kind)


def stats(client: FlaskClient) -> dict[str, int]:
    app = client.application
    counts: dict[str, int] = app.extensions["gateway"].stores.stats.read()
    return counts


def test_the_door_of_a_blueprint() -> None:
    assert [metrics.door_of(b) for b in ("chat", "jobs", "batches", "files")] == [
        "chat",
        "jobs",
        "batches",
        "batches",
    ]
    for other in ("health", "admin", "metrics", "dashboard", "models", "usage", None):
        assert metrics.door_of(other) == metrics.OTHER_DOOR


def test_chat_and_jobs_requests_are_counted_at_their_doors(client: FlaskClient) -> None:
    chat, jobs = "/v1/chat/completions", "/v1/jobs"
    before = (requests(chat, "202", "chat"), requests(jobs, "202", "jobs"))
    timed = (latencies(chat, "chat"), latencies(jobs, "jobs"))
    assert client.post(chat, json=OK, headers=ASYNC).status_code == 202
    assert client.post(jobs, json={"request": OK}, headers=H).status_code == 202
    assert requests(chat, "202", "chat") == before[0] + 1
    assert requests(jobs, "202", "jobs") == before[1] + 1
    assert (latencies(chat, "chat"), latencies(jobs, "jobs")) == (timed[0] + 1, timed[1] + 1)
    assert requests(chat, "202", "jobs") == 0 and requests(jobs, "202", "chat") == 0
    # Each door's queued job is counted fleet-wide by create.lua, from the record's door.
    counts = stats(client)
    assert counts["door_jobs_chat"] == 1 and counts["door_jobs_jobs"] == 1
    assert "door_errors_jobs" not in counts  # no error answered yet


def test_an_error_answer_counts_at_its_door_and_fleet_wide(client: FlaskClient) -> None:
    before = errors("jobs", "400", "invalid_request_error")
    resp = client.post("/v1/jobs", json={"request": {"model": "m"}}, headers=H)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["type"] == "invalid_request_error"
    assert errors("jobs", "400", "invalid_request_error") == before + 1
    assert stats(client)["door_errors_jobs"] == 1
    # A caller without a key is counted by this process, never fleet-wide (no Redis write).
    anonymous = errors("chat", "401", "authentication_error")
    unauthorized = client.post("/v1/chat/completions", json=OK)
    assert unauthorized.status_code == 401
    assert errors("chat", "401", "authentication_error") == anonymous + 1
    assert "door_errors_chat" not in stats(client)
    bad = client.post("/v1/chat/completions", json={"model": "m"}, headers=H)
    assert bad.status_code == 400
    counts = stats(client)
    assert counts["door_errors_chat"] == 1
    summary = metric_summary(counts)["doors"]
    assert summary["jobs"] == {"jobs": 0, "errors": 1}
    assert summary["chat"] == {"jobs": 0, "errors": 1}
    # The status page shows the same counts.
    health = client.get("/v1/health", headers=H)
    assert health.status_code == 200
    assert health.get_json()["metrics"]["doors"] == summary


def test_errors_on_other_routes_count_at_no_door(client: FlaskClient) -> None:
    before = sample("gateway_http_errors_total", door="other", status="401", type="")
    assert client.get("/v1/models").status_code == 401
    assert client.get("/no/such/route").status_code == 404
    assert sample("gateway_http_errors_total", door="other", status="401", type="") == before
    assert not [f for f in stats(client) if f.startswith("door_errors_")]
    assert sample(
        "gateway_http_requests_total",
        route="unmatched",
        method="GET",
        status="404",
        door="other",
    )


def test_create_counts_a_queued_job_at_its_door_once() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    store = JobStore(r, KEYS, 3600)
    job = queued_job(door="batches")
    assert store.create(job).outcome == "ok"
    assert store.create(job).outcome == "ok"  # a second run of the same call: counted once
    assert r.hget(KEYS.stats, "door_jobs_batches") == "1"
    assert r.hget(KEYS.stats, "jobs_submitted") == "1"
    # A job answered at once (a cache hit) is not a submitted job; nor is one with no door.
    store.create(replace(queued_job(door="chat"), status=SUCCEEDED, result={}))
    store.create(queued_job())
    assert r.hget(KEYS.stats, "door_jobs_chat") is None
    assert r.hget(KEYS.stats, "jobs_submitted") == "2"
    assert metric_summary({str(k): int(v) for k, v in r.hgetall(KEYS.stats).items()})["doors"] == {
        "batches": {"jobs": 1, "errors": 0}
    }


def test_tokens_are_counted_at_the_jobs_door() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 5}
    done = Outcome(SUCCEEDED, {"provider": "p", "result": {"usage": usage}})

    def tokens(door: str) -> float:
        return sample(
            "gateway_tokens_total", provider="p", model="m", key_id="o", kind="prompt", door=door
        )

    before = tokens("chat"), tokens("unknown")
    _count_tokens(queued_job(door="chat"), done)
    _count_tokens(queued_job(), done)  # a record written before doors were recorded
    assert (tokens("chat"), tokens("unknown")) == (before[0] + 3, before[1] + 3)

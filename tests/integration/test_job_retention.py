"""What a finished job keeps: a synchronous job (its client already has the answer) keeps its
full record ``queue.sync_result_ttl_s``, then a slim one (no request, no answer, attempts without
error messages) for the rest of ``queue.result_ttl_s``; a job submitted to be polled keeps its
full record all along. Against a real redis-server, and through a real stack with the official
openai client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import pytest
import redis

from shared.keys import Keys
from shared.state.jobs import JobStore
from tests.support import web
from tests.support.jobs import queued_job
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

ATTEMPTS = [
    {
        "provider": "mock",
        "model": "mock-model",
        "started_at": 1.0,
        "duration_ms": 12,
        "outcome": "error",
        "error": {"class": "server", "status": 502, "code": None, "message": "x" * 500},
    },
    {
        "provider": "backup",
        "model": "backup-model",
        "started_at": 2.0,
        "duration_ms": 9,
        "outcome": "success",
        "error": None,
    },
]
ANSWER = {"id": "chatcmpl-1", "choices": [{"message": {"content": "y" * 2000}}]}


@pytest.fixture
def store(redis_db: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_db, decode_responses=True), Keys("gw"), 3600)


def _finished(store: JobStore, keep_s: int) -> str:
    job = queued_job(request={"messages": [{"role": "user", "content": "p" * 4000}]}, keep_s=keep_s)
    store.create(job)
    store.begin(job.id, "t", 5, 5)
    store.r.xadd(KEYS.stream(job.id), {"data": "chunk"})
    store.r.hincrby(KEYS.job(job.id), "cost_micro", 42)  # as charge.lua bills a call
    fields = {"result": ANSWER, "attempts": ATTEMPTS, "provider": "backup"}
    assert store.finish(job.id, "t", "succeeded", fields) == 1
    return job.id


def test_a_synchronous_job_is_slimmed_after_its_short_keeping_time(store: JobStore) -> None:
    sync = _finished(store, keep_s=30)
    polled = _finished(store, keep_s=0)
    assert store.slim_due(time.time(), 100) == (0, 0)  # not due yet
    full = store.r.memory_usage(KEYS.job(sync))
    ttl = store.r.ttl(KEYS.job(sync))

    assert store.slim_due(time.time() + 31, 100) == (1, 1)
    record = store.r.hgetall(KEYS.job(sync))
    assert set(record) == {"id", "owner", "status", "slim"}
    assert store.r.exists(KEYS.stream(sync)) == 0  # nobody re-attaches to a sync job
    assert 0 < store.r.ttl(KEYS.job(sync)) <= ttl  # kept for the rest of result_ttl_s
    slim = store.r.memory_usage(KEYS.job(sync))
    assert slim <= 1024 < full, (slim, full)

    job = store.get_public(sync)
    assert job is not None and job.slimmed
    public = job.to_public()
    assert public["status"] == "succeeded" and public["result"] is None
    assert public["provider"] == "backup" and public["cost_usd"] == pytest.approx(42e-6)
    assert [a["outcome"] for a in public["attempts"]] == ["error", "success"]
    assert public["attempts"][0]["error"] == {"class": "server", "status": 502, "code": None}
    assert store.poll(sync) is not None and store.poll(sync).status == "succeeded"  # type: ignore[union-attr]
    listed, _ = store.list_for_owner("o", 10)
    assert {j.id for j in listed} >= {sync, polled}

    # A job submitted to be polled keeps everything.
    kept = store.r.hgetall(KEYS.job(polled))
    assert json.loads(kept["result"]) == ANSWER and "request" in kept
    assert store.r.exists(KEYS.stream(polled)) == 1
    # Done once: a second sweep finds nothing due and a slim record is never slimmed again.
    assert store.slim_due(time.time() + 31, 100) == (0, 0)


def test_a_record_gone_before_its_time_is_not_recreated_by_the_slimming(store: JobStore) -> None:
    sync = _finished(store, keep_s=30)
    store.r.delete(KEYS.job(sync))
    assert store.slim_due(time.time() + 31, 100) == (0, 1)
    assert store.r.exists(KEYS.job(sync)) == 0


@pytest.fixture
def short_stack(make_stack: StackFactory) -> Iterator[Stack]:
    s = make_stack("retention", queue={"sync_result_ttl_s": 1})
    try:
        s.start_all()
        yield s
    finally:
        s.stop()


def _client(s: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{s.api_url}/v1", api_key="none", max_retries=0)


def _sync_answer(s: Stack, content: str) -> str:
    """A synchronous chat completion through the openai client; its job id."""
    raw = _client(s).chat.completions.with_raw_response.create(
        model="mock-model", messages=[{"role": "user", "content": content}]
    )
    assert raw.parse().choices[0].message.content
    return str(raw.headers["x-gateway-job-id"])


def test_through_the_gateway_sync_and_streamed_answers_are_slimmed_and_polled_jobs_kept(
    short_stack: Stack, unique: str
) -> None:
    s = short_stack
    client = _client(s)
    sync_id = _sync_answer(s, f"{unique} sync")
    with client.chat.completions.with_streaming_response.create(
        model="mock-model",
        messages=[{"role": "user", "content": f"{unique} streamed"}],
        stream=True,
    ) as streamed:
        streamed_id = streamed.headers["x-gateway-job-id"]
        assert any(streamed.iter_lines())
    polled_id = s.submit(f"{unique} polled")
    s.wait_job(polled_id, {"succeeded"})

    for job_id in (sync_id, streamed_id):
        wait_for(lambda j=job_id: s.redis.hexists(KEYS.job(j), "slim"), 30, "the slimming")  # type: ignore[misc]
        assert s.redis.memory_usage(KEYS.job(job_id)) <= 1024
        job = web.get(f"{s.api_url}/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded" and job["result"] is None
        assert [a["outcome"] for a in job["attempts"]] == ["success"]
        assert job["model"] == "mock-model" and job["provider"] == "mock"
    assert s.redis.exists(KEYS.stream(streamed_id)) == 0
    kept = web.get(f"{s.api_url}/v1/jobs/{polled_id}").json()
    assert kept["result"]["choices"][0]["message"]["content"]
    assert s.redis.hexists(KEYS.job(polled_id), "request")


def test_a_slimmed_jobs_stream_answers_result_expired_and_a_late_charge_still_counts(
    short_stack: Stack, unique: str
) -> None:
    s = short_stack
    job_id = _sync_answer(s, f"{unique} sync")
    wait_for(lambda: s.redis.hexists(KEYS.job(job_id), "slim"), 30, "the slimming")
    resp = web.get(f"{s.api_url}/v1/jobs/{job_id}/stream")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "result_expired"
    before = web.get(f"{s.api_url}/v1/jobs/{job_id}").json()["cost_usd"] or 0
    s.redis.hincrby(KEYS.job(job_id), "cost_micro", 1500)  # a lapsed delivery's late charge
    after = web.get(f"{s.api_url}/v1/jobs/{job_id}").json()["cost_usd"]
    assert after == pytest.approx(before + 0.0015)

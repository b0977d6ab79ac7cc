"""Rolling upgrades: a worker that does not know a job's kind puts it back for another worker
and never runs it as something else (workers/kinds.py, JobRunner.run); the store keeps a job's
kind and door."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from gateway_cli.embedded_redis import free_port
from shared.keys import Keys
from shared.state.jobs import Begin, JobStore
from tests.support import web
from tests.support.jobs import queued_job
from tests.support.stack import Proc, Stack, StackFactory, wait_for

KEYS = Keys("gw")
PUT_BACK = "job put back: unknown kind"


@pytest.fixture
def store(redis_db: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_db, decode_responses=True), KEYS, 3600)


def test_kind_and_door_are_written_and_read_back_by_a_worker(store: JobStore) -> None:
    job = queued_job(kind="embeddings", door="embeddings")
    assert store.create(job).outcome == "ok"
    public = store.get_public(job.id)
    assert public is not None and public.to_public()["kind"] == "embeddings"
    begun = store.begin(job.id, "t1", 5, 5)
    assert begun.outcome is Begin.OK and begun.job is not None
    assert (begun.job.kind, begun.job.door) == ("embeddings", "embeddings")
    # Put back unrun: the start it was stamped with is undone, and the next begin stamps it.
    assert store.defer(job.id, "t1", time.time(), "queued", {"started_at": None}) == 1
    parked = store.get(job.id)
    assert parked is not None and parked.started_at is None and parked.status == "queued"
    assert store.begin(job.id, "t2", 5, 5).outcome is Begin.OK
    again = store.get(job.id)
    assert again is not None and again.started_at is not None and again.deliveries == 1


def test_an_older_record_reads_as_a_chat_job(store: JobStore) -> None:
    job = queued_job()
    store.create(job)
    store.r.hdel(KEYS.job(job.id), "kind", "door")
    got = store.get(job.id)
    assert got is not None and (got.kind, got.door) == ("chat", "")


@pytest.fixture
def kinds_stack(make_stack: StackFactory) -> Iterator[Stack]:
    s = make_stack("kinds")
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


def put_backs(proc: Proc, job_id: str) -> int:
    """The put-backs of ``job_id`` that ``proc``'s log tells (one JSON event per line)."""
    n = 0
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if PUT_BACK in line:
            event = json.loads(line)
            n += event.get("job_id") == job_id and event["msg"] == PUT_BACK
    return n


def scraped_put_backs(port: int) -> float:
    text = web.get(f"http://127.0.0.1:{port}/metrics").text
    for line in text.splitlines():
        if line.startswith('gateway_jobs_put_back_total{reason="unknown_kind"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_worker_that_does_not_know_the_kind_puts_the_job_back_for_one_that_does(
    kinds_stack: Stack, unique: str
) -> None:
    s = kinds_stack
    port = free_port()
    older = s.start_worker("older", concurrency=4, older=True, metrics_port=port)
    job_id = s.submit(unique)

    def status() -> str:
        return str(s.redis.hget(KEYS.job(job_id), "status"))

    # Put back twice (or run, were the put-back missing: then it ends at once).
    wait_for(
        lambda: put_backs(older, job_id) >= 2 or status() in ("succeeded", "failed"),
        60,
        "the older worker to put the job back twice",
    )
    assert put_backs(older, job_id) >= 2, older.tail()
    assert scraped_put_backs(port) >= 2

    # Parked queued between offers, never started, no delivery used up, no provider called.
    def queued_again() -> dict[str, object] | None:
        got: dict[str, object] = web.get(f"{s.api_url}/v1/jobs/{job_id}").json()
        return got if got["status"] == "queued" else None

    job = wait_for(queued_again, 10, "the job to be queued again")
    assert job["kind"] == "chat" and job["started_at"] is None and job["attempts"] == []
    assert int(s.redis.hget(KEYS.job(job_id), "deliveries") or 0) <= 1
    assert s.mock_calls(unique) == 0

    s.start_worker("current", concurrency=4)  # the older one keeps running beside it
    done = s.wait_job(job_id, {"succeeded", "failed", "expired"}, timeout=60)
    assert done["status"] == "succeeded", done
    assert len(done["attempts"]) == 1 and done["started_at"] is not None
    assert s.mock_calls(unique) == 1

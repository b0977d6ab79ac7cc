"""A job whose broker message was handed out but never began runs elsewhere within seconds.

With kombu's ack emulation off, nothing remembers a message once a worker's BRPOP has taken it:
a worker SIGKILLed (or OOM-killed) with jobs taken but waiting for a slot, or cut off the
network while its BRPOP's answer was on the wire, loses those messages. The jobs are still
queued in Redis; the pending sweep must find them in seconds, not after
``queue.redeliver_after_s`` (120 s by default), long after a sync client gave up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.celery_app import QUEUES
from tests.support import web
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

# Well inside queue.redeliver_after_s (the slow backstop, which must not be what saves them).
RECOVERED_WITHIN_S = 60


@pytest.fixture
def lost_stack(make_stack: StackFactory) -> Iterator[Stack]:
    s = make_stack("lost", queue={"redeliver_after_s": 240, "deadline_s": 300})
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


def test_a_job_whose_message_a_vanished_worker_took_runs_within_seconds(
    lost_stack: Stack, unique: str
) -> None:
    s = lost_stack
    job_id = s.submit(unique)
    queue = QUEUES["normal"]
    # A worker cut off the network: its BRPOP took the message, the answer never arrived.
    assert s.redis.rpop(queue) is not None
    assert s.redis.llen(queue) == 0
    assert s.redis.hget(KEYS.job(job_id), "status") == "queued"
    s.start_worker("rescuer")
    started = time.time()
    job = s.wait_job(job_id, {"succeeded", "failed", "expired"}, timeout=RECOVERED_WITHIN_S)
    assert job["status"] == "succeeded"
    assert s.mock_calls(unique) == 1
    print(f"lost message recovered in {time.time() - started:.1f}s")


def test_jobs_a_killed_worker_held_for_a_slot_run_elsewhere_within_seconds(
    lost_stack: Stack, unique: str
) -> None:
    s = lost_stack
    # Made while no worker runs, the jobs gather behind one group message (group commit).
    # The victim (4 slots) begins the first four, whose first calls hang until the kill, and
    # its free pool places take the next ones one at a time: they wait for a slot, taken
    # from the broker and not begun. The rest stay behind a group message in the broker.
    hung = [f"{unique}-hung-{i}" for i in range(4)]
    rest = [f"{unique}-{i}" for i in range(6)]
    ids = [s.submit(k, hang_first_s=300) for k in hung] + [s.submit(k) for k in rest]
    victim = s.start_worker("victim", concurrency=4)
    wait_for(lambda: all(s.mock_calls(k) == 1 for k in hung), 30, "four calls in flight")
    wait_for(lambda: s.redis.zcard(KEYS.taken) >= 1, 30, "jobs waiting for a slot")
    waiting = set(s.redis.zrange(KEYS.taken, 0, -1))
    assert waiting <= set(ids[4:]), waiting
    for job_id in waiting:
        assert s.redis.hget(KEYS.job(job_id), "status") == "queued"

    victim.kill()  # SIGKILL: the waiting jobs' messages die with it
    s.start_worker("rescuer")
    started = time.time()
    for job_id in ids:
        job = s.wait_job(job_id, {"succeeded", "failed", "expired"}, timeout=RECOVERED_WITHIN_S)
        assert job["status"] == "succeeded", job
    print(f"{len(waiting)} taken-not-begun jobs recovered; all done {time.time() - started:.1f}s")
    for key in rest:
        assert s.mock_calls(key) == 1  # never called twice
    assert s.redis.zcard(KEYS.taken) == 0


def test_a_saturated_worker_with_a_backlog_and_a_retry_republishes_nothing(
    lost_stack: Stack, unique: str
) -> None:
    # Two slots held for several seconds (longer than the sweep's grace) by one group message's
    # two jobs, so the worker's pool still has a free place: it takes the next group message,
    # whose first job waits for a slot while the backlog gathers behind it, and a retry is
    # parked and republished meanwhile. All of it waits, none of it is lost: the pending sweep
    # must not publish any job again.
    s = lost_stack
    slow = [s.submit(f"{unique}-slow-{i}", latency_ms=8000) for i in range(2)]
    worker = s.start_worker("busy", concurrency=2)
    wait_for(lambda: all(s.mock_calls(f"{unique}-slow-{i}") == 1 for i in range(2)), 30, "busy")
    resp = web.post(
        f"{s.api_url}/v1/jobs",
        json={
            "request": {
                "messages": [{"role": "user", "content": f"{unique}-retry"}],
                "mock": {"status": 503, "fail_times": 1, "key": f"{unique}-retry"},
            }
        },
    )
    assert resp.status_code == 202, resp.text
    retry = resp.json()["id"]
    backlog = [s.submit(f"{unique}-{i}") for i in range(20)]
    for job_id in [*slow, retry, *backlog]:
        job = s.wait_job(job_id, {"succeeded", "failed", "expired"}, timeout=120)
        assert job["status"] == "succeeded", job
    assert s.mock_calls(f"{unique}-retry") == 2  # the failure, then the retry
    log = worker.log_path.read_text(errors="replace")
    assert "broker message was lost" not in log, "a waiting job was republished"
    for i in range(20):
        assert s.mock_calls(f"{unique}-{i}") == 1

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

"""Group commit (create.lua gathers; group_take.lua, alone or inside begin.lua, takes) against
a real Redis.

Processes create jobs into a queue's group while other processes act as workers: pop a
message, take the group. Every job must be taken exactly once, and no job may be left in a
group that no message will come for. Then, through a real stack: jobs created while no
worker runs travel in a few messages, and each runs exactly once.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
from typing import Any

import httpx
import pytest
import redis

from shared.celery_app import QUEUES
from shared.keys import Keys
from shared.state.job_record import new_job_id
from shared.state.jobs import Begin, GroupTake, JobStore
from shared.wire.task_message import run_group_message
from tests.support.jobs import queued_job
from tests.support.stack import Stack, wait_for

KEYS = Keys("gw")
QUEUE = QUEUES["normal"]


def _store(url: str) -> JobStore:
    return JobStore(redis.Redis.from_url(url, decode_responses=True), KEYS, 3600)


def _create(store: JobStore, ttl_ms: int) -> str:
    job = queued_job()
    message = run_group_message(QUEUE, job.id)
    outcome = store.create(job, publish=(QUEUE, message), group_ttl_ms=ttl_ms).outcome
    assert outcome == "ok"
    return job.id


def _creator(url: str, n: int, ttl_ms: int, out: Any) -> None:
    store = _store(url)
    out.put(("created", [_create(store, ttl_ms) for _ in range(n)]))


def _first(message: bytes) -> str:
    """The job a group message names (the one that sent it), or ""."""
    body = json.loads(base64.b64decode(json.loads(message)["body"]))
    return str(body[0][1])


def _taker(url: str, most: int, with_begin: bool, creators_done: Any, out: Any) -> None:
    """Take groups until the creators are done and no message is left; ``with_begin``: as
    the worker does, in the step that leases the job a message names."""
    store = _store(url)
    r = redis.Redis.from_url(url)
    taken: list[str] = []
    messages = 0
    while True:
        done = creators_done.is_set()
        got = r.brpop([QUEUE], timeout=0.5)
        if got is None:
            if done:
                break
            continue
        messages += 1
        first = _first(got[1])
        if first and with_begin:
            group = GroupTake(QUEUE, most, run_group_message(QUEUE), 1000)
            begun = store.begin(first, "token", 30, 5, group)
            assert begun.outcome is Begin.OK and begun.taken is not None
            taken += [first, *begun.taken]
            continue
        taken += [first] if first else []
        taken += store.take_group(GroupTake(QUEUE, most, run_group_message(QUEUE), 1000))
    out.put(("taken", taken, messages))


@pytest.mark.parametrize("with_begin", [False, True], ids=["group_take", "in_begin"])
@pytest.mark.parametrize("ttl_ms", [1000, 5])  # 5 ms: the marker lapses mid-race too
def test_every_job_is_taken_exactly_once_across_processes(
    redis_db: str, ttl_ms: int, with_begin: bool
) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue()
    done = ctx.Event()
    takers = [
        ctx.Process(target=_taker, args=(redis_db, 7, with_begin, done, out)) for _ in range(3)
    ]
    creators = [ctx.Process(target=_creator, args=(redis_db, 300, ttl_ms, out)) for _ in range(3)]
    for p in takers + creators:
        p.start()
    results = [out.get(timeout=120) for _ in creators]
    done.set()
    results += [out.get(timeout=60) for _ in takers]
    for p in takers + creators:
        p.join(30)
    created = [i for r in results if r[0] == "created" for i in r[1]]
    taken = [i for r in results if r[0] == "taken" for i in r[1]]
    messages = sum(r[2] for r in results if r[0] == "taken")
    assert len(created) == 900
    assert sorted(taken) == sorted(created)  # each once: none lost, none twice
    r = redis.Redis.from_url(redis_db)
    assert r.llen(KEYS.group(QUEUE)) == 0
    assert r.llen(QUEUE) == 0  # every message sent was consumed...
    assert messages < len(created)  # ...and there were fewer messages than jobs


def test_a_large_group_leaves_the_rest_a_message_of_its_own(redis_db: str) -> None:
    store = _store(redis_db)
    r = redis.Redis.from_url(redis_db)
    ids = [_create(store, 60_000) for _ in range(10)]
    assert r.llen(QUEUE) == 1  # one message for the ten
    got = r.brpop([QUEUE], timeout=1)
    assert got is not None and _first(got[1]) == ids[0]  # it names the job that sent it
    first = store.take_group(GroupTake(QUEUE, 4, run_group_message(QUEUE), 60_000))
    assert first == ids[1:5]
    assert r.llen(QUEUE) == 1  # the rest got a message at once
    got = r.brpop([QUEUE], timeout=1)
    assert got is not None and _first(got[1]) == ""
    assert store.take_group(GroupTake(QUEUE, 100, run_group_message(QUEUE), 60_000)) == ids[5:]
    assert not r.exists(KEYS.group_sent(QUEUE))  # emptied: the next job sends at once
    _create(store, 60_000)
    assert r.llen(QUEUE) == 1


def test_the_first_jobs_lease_takes_its_group_in_the_same_step(redis_db: str) -> None:
    store = _store(redis_db)
    r = redis.Redis.from_url(redis_db)
    ids = [_create(store, 60_000) for _ in range(6)]
    got = r.brpop([QUEUE], timeout=1)
    assert got is not None and _first(got[1]) == ids[0]
    begun = store.begin(ids[0], "t", 30, 5, GroupTake(QUEUE, 3, run_group_message(QUEUE), 60_000))
    assert begun.outcome is Begin.OK and begun.job is not None and begun.job.id == ids[0]
    assert begun.taken == ids[1:4]
    assert r.llen(QUEUE) == 1  # the two left over got a message of their own
    # A job already finished (or missing) still hands over its group: nothing is stranded.
    assert store.finish(ids[0], "t", "succeeded", {"result": {}}) == 1
    again = store.begin(ids[0], "t2", 30, 5, GroupTake(QUEUE, 10, run_group_message(QUEUE), 1))
    assert again.outcome is Begin.TERMINAL and again.taken == ids[4:]
    assert not r.exists(KEYS.group_sent(QUEUE))
    assert store.begin(ids[1], "t3", 30, 5).taken is None  # no group asked: none taken


def test_jobs_gathered_while_no_worker_runs_each_run_once(
    redis_db: str, mock_port: int, tmp_path: Any
) -> None:
    stack = Stack(tmp_path / "gc", redis_db, mock_port)
    try:
        stack.start_api()
        ids = []
        with httpx.Client(base_url=stack.api_url, timeout=30) as client:
            for i in range(40):
                resp = client.post(
                    "/v1/jobs",
                    json={
                        "request": {
                            "model": "mock-model",
                            "messages": [{"role": "user", "content": f"gc {i} {new_job_id()}"}],
                        }
                    },
                )
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["id"])
            messages = stack.redis.llen(QUEUE)
            assert messages < 40, messages  # gathered: fewer messages than jobs
            depth = client.get("/v1/health").json()
            assert depth["queues"]["normal"] == 40, depth  # depth still counts jobs
            stack.start_worker(concurrency=16)  # fewer slots than jobs: groups split
            for job_id in ids:
                job = stack.wait_job(job_id, {"succeeded", "failed"}, timeout=60)
                assert job["status"] == "succeeded", job
                assert len(job["attempts"]) == 1, job  # one provider call each
        wait_for(lambda: stack.redis.llen(QUEUE) == 0, 10, "the queue to drain")
    finally:
        stack.stop()

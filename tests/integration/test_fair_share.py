"""Fair share and per-priority backpressure in the job store's Lua scripts, against a real
Redis: a key's window holds its jobs back (create.lua), a begin frees a place (begin.lua),
fair_release.lua releases exactly the room, never a job twice, with releasers racing in
several processes; a batch's expansion step happens once however many processes try."""

from __future__ import annotations

import json
import multiprocessing
import time
from typing import Any

import redis

from shared.batch.batch_store import BatchStore, ExpandLine, line_job_id
from shared.celery_app import QUEUES
from shared.keys import Keys
from shared.state.fair import FairShare
from shared.state.job_record import encode_fields, fair_hint
from shared.state.jobs import Begin, Created, JobStore
from tests.support.jobs import queued_job

KEYS = Keys("gw")


def _stores(url: str) -> tuple[redis.Redis, JobStore, FairShare]:
    r = redis.Redis.from_url(url, decode_responses=True)
    return r, JobStore(r, KEYS, 3600), FairShare(r, KEYS)


def _made(created: Created) -> tuple[str, float]:
    return created.outcome, created.value


def test_backpressure_counts_each_priority_apart(redis_db: str) -> None:
    _, store, _ = _stores(redis_db)
    for _ in range(3):
        assert store.create(queued_job(priority="batch"), max_depth=3).outcome == "ok"
    assert _made(store.create(queued_job(priority="batch"), max_depth=3)) == ("full_depth", 3.0)
    # A full batch queue refuses nothing else.
    assert store.create(queued_job(priority="interactive"), max_depth=3).outcome == "ok"
    assert store.create(queued_job(priority="normal"), max_depth=3).outcome == "ok"


def test_a_full_window_holds_jobs_until_a_begin_frees_a_place(redis_db: str) -> None:
    r, store, fair = _stores(redis_db)
    jobs = [queued_job(owner="a") for _ in range(5)]
    outcomes = [store.create(j, fair_room=2).outcome for j in jobs]
    assert outcomes == ["ok", "ok", "held", "held", "held"]
    assert r.zcard(KEYS.pending("normal")) == 2  # held jobs are not pending (never published)
    assert fair.held() == {"interactive": 0, "normal": 3, "batch": 0}
    assert fair.backlogged("normal") == ["a"]
    # Another key is not held behind a's backlog.
    assert store.create(queued_job(owner="b"), fair_room=2).outcome == "ok"

    begun = store.begin(jobs[0].id, "t", 5, 5)
    assert begun.outcome is Begin.OK and begun.backlog == 3
    now = time.time()
    released = fair.release("normal", "a", 2, now - 900, now, QUEUES["normal"], None, 1000)
    assert released == [jobs[2].id]  # one place freed, the oldest held job takes it
    assert fair.release("normal", "a", 2, now - 900, now, QUEUES["normal"], None, 1000) == []
    assert r.zscore(KEYS.pending("normal"), jobs[2].id) is not None
    # Depth counts held jobs too: 2 pending + 2 held for "a", 1 for "b".
    assert _made(store.create(queued_job(owner="c"), max_depth=5)) == ("full_depth", 5.0)
    # A job cancelled in the window leaves it.
    store.terminate(jobs[1].id, "cancelled", _error())
    assert fair.release("normal", "a", 2, now - 900, now, QUEUES["normal"], None, 1000) == [
        jobs[3].id
    ]
    # A window entry older than the cut-off (a lost message) stops counting.
    later = now + 10
    assert fair.release("normal", "a", 2, later - 1, later, QUEUES["normal"], None, 1000) == [
        jobs[4].id
    ]
    assert fair.backlogged("normal") == [] and fair.held()["normal"] == 0


def _error() -> Any:
    from shared.errors import Conflict

    return Conflict("cancelled")


def _releaser(url: str, room: int, out: Any) -> None:
    """Release and begin the key's jobs until its backlog is empty, as workers do."""
    r, store, fair = _stores(url)
    got: list[str] = []
    worst = 0
    # Until every held job is released (the event the test waits for), however slow.
    while r.llen(KEYS.fair_backlog("normal", "a")):
        now = time.time()
        ids = fair.release("normal", "a", room, now - 900, now, QUEUES["normal"], None, 1000)
        worst = max(worst, int(r.zcard(KEYS.fair_window("normal", "a"))))
        got += ids
        for job_id in ids:
            store.begin(job_id, "t", 5, 5)
    out.put((got, worst))


def test_releasers_racing_release_each_job_once_within_the_window(redis_db: str) -> None:
    r, store, _ = _stores(redis_db)
    room, n = 5, 300
    jobs = [queued_job(owner="a") for _ in range(n)]
    pipe_ok = [store.create(j, fair_room=room).outcome for j in jobs]
    assert pipe_ok.count("ok") == room
    out: Any = multiprocessing.get_context("spawn").Queue()
    procs = [
        multiprocessing.get_context("spawn").Process(target=_releaser, args=(redis_db, room, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    # The first `room` jobs were published at once; begin them, as a worker would.
    for j in jobs[:room]:
        store.begin(j.id, "t", 5, 5)
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    released = [i for got, _ in results for i in got]
    assert len(released) == len(set(released)) == n - room  # each held job once
    assert set(released) == {j.id for j in jobs[room:]}
    assert max(worst for _, worst in results) <= room  # the window never overflowed
    assert r.get(KEYS.fair_held("normal")) == "0"


def _expander(url: str, batch_id: str, start: Any, out: Any) -> None:
    r = redis.Redis.from_url(url, decode_responses=True)
    batches = BatchStore(r, KEYS, 3600)
    batch = batches.get(batch_id)
    assert batch is not None
    jobs = []
    for n in range(1, 11):
        fields = queued_job(owner="a", priority="batch").__dict__ | {"id": line_job_id(batch_id, n)}
        record = {
            k: fields[k]
            for k in ("id", "owner", "status", "priority", "model", "request", "created_at")
        }
        record["fair"] = fair_hint(KEYS, "batch", "a")
        jobs.append(ExpandLine(record["id"], encode_fields(record), 0, f"{n * 10}:{n}", b""))
    start.wait(60)
    out.put(batches.expand(batch, jobs, "100:10", 3600, 10**6, 10**6, None).why)


def test_an_expansion_step_happens_once_however_many_try(redis_db: str) -> None:
    r, _, fair = _stores(redis_db)
    batches = BatchStore(r, KEYS, 3600)
    batch = batches.create("a", "file-x", "/v1/chat/completions", "24h", 3600, None)
    assert batches.move(batch, ("validating",), "in_progress", total=10)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=_expander, args=(redis_db, batch.id, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.wait(60)  # every process stands at the start line, then all go at once
    results = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert results == ["moved", "moved", "moved", "ok"]
    assert r.llen(KEYS.fair_backlog("batch", "a")) == 10  # ten jobs, not forty
    assert fair.held()["batch"] == 10
    got = batches.get(batch.id)
    assert got is not None and got.cursor == "100:10" and got.expanded == 10
    # Cancelled: no further expansion.
    assert batches.move(batch, ("in_progress",), "cancelling")
    got = batches.get(batch.id)
    assert got is not None
    assert batches.expand(got, [], "200:20", 3600, 10**6, 10**6, None).why == "ended"


def test_a_finished_line_writes_its_output_once_and_keeps_a_short_record(redis_db: str) -> None:
    """finish.lua and terminate.lua end a batch line alike (job_ended.lua): one output line,
    the counts moved, and the record trimmed to a 10-minute life, whichever script ends it."""
    r, store, _ = _stores(redis_db)
    batches = BatchStore(r, KEYS, 3600)
    batch = batches.create("a", "file-x", "/v1/chat/completions", "24h", 3600, None)
    line_hint = f"{KEYS.batch(batch.id)}\n{KEYS.batch_results(batch.id)}"
    done, cut = queued_job(owner="a"), queued_job(owner="a")
    for job, custom_id in ((done, "one"), (cut, "two")):
        store.create(job)
        r.hset(KEYS.job(job.id), mapping={"batch": line_hint, "custom_id": custom_id})
    assert store.begin(done.id, "t", 5, 5).outcome is Begin.OK
    assert store.finish(done.id, "t", "succeeded", {"result": {"object": "chat.completion"}}) == 1
    assert store.finish(done.id, "t", "succeeded", {"result": {}}) == -1  # once only
    store.terminate(cut.id, "cancelled", _error())
    lines = [json.loads(x) for x in r.lrange(KEYS.batch_results(batch.id), 0, -1)]
    assert [x["custom_id"] for x in lines] == ["one", "two"]
    assert lines[0]["response"]["body"] == {"object": "chat.completion"}
    assert lines[1]["error"]["code"] == "batch_cancelled"
    for job in (done, cut):
        assert 0 < r.ttl(KEYS.job(job.id)) <= 600
        assert r.hget(KEYS.job(job.id), "request") is None
    got = batches.get(batch.id)
    assert got is not None and (got.completed, got.ended) == (1, 2)

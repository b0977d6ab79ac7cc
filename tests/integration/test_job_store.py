"""The job store's Lua state changes, against a real redis-server, raced across processes."""

from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis

from shared.errors import Conflict
from shared.keys import Keys
from shared.state.job_record import Job
from shared.state.jobs import Begin, JobStore
from tests.support.jobs import queued_job
from workers.reaper import LEASE_PAGE, sweep_leases

KEYS = Keys("gw")


def make_job(store: JobStore, deadline_s: float = 60, **fields: object) -> Job:
    job = queued_job(deadline_s, **fields)
    store.create(job)
    return job


@pytest.fixture
def store(redis_db: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_db, decode_responses=True), KEYS, 3600)


def test_one_lease_at_a_time_and_results_only_under_it(store: JobStore) -> None:
    job = make_job(store)
    first = store.begin(job.id, "t1", 5, 5)
    assert first.outcome is Begin.OK and first.deliveries == 1
    assert store.begin(job.id, "t2", 5, 5).outcome is Begin.LEASED
    assert store.finish(job.id, "t2", "succeeded", {"result": {"x": 2}}) == 0
    assert store.finish(job.id, "t1", "succeeded", {"result": {"x": 1}}) == 1
    got = store.get(job.id)
    assert got is not None and got.status == "succeeded" and got.result == {"x": 1}
    assert store.begin(job.id, "t3", 5, 5).outcome is Begin.TERMINAL
    assert store.finish(job.id, "t1", "failed", {}) == -1  # terminal: no second result


def test_a_lapsed_lease_is_taken_back_by_its_runner_unless_the_job_moved_on(
    store: JobStore,
) -> None:
    # A Redis outage longer than the lease: its expiry passed while the call ran on.
    job = make_job(store)
    store.begin(job.id, "t1", 5, 5)
    store.r.delete(KEYS.lease(job.id))
    assert store.renew(job.id, "t1", 5) is True  # still running here: taken back
    assert store.r.get(KEYS.lease(job.id)) == "t1"
    store.r.delete(KEYS.lease(job.id))
    assert store.reclaim(job.id) == "normal"  # the reaper queued it again meanwhile
    assert store.renew(job.id, "t1", 5) is False
    # The late result is still the job's only one, until another delivery takes the lease.
    assert store.finish(job.id, "t1", "succeeded", {"result": {"x": 1}}) == 1
    assert store.begin(job.id, "t2", 5, 5).outcome is Begin.TERMINAL


def test_a_lapsed_lease_taken_by_another_delivery_refuses_the_late_result(
    store: JobStore,
) -> None:
    job = make_job(store)
    store.begin(job.id, "t1", 5, 5)
    store.r.delete(KEYS.lease(job.id))
    store.reclaim(job.id)
    assert store.begin(job.id, "t2", 5, 5).outcome is Begin.OK
    assert store.renew(job.id, "t1", 5) is False
    assert store.finish(job.id, "t1", "succeeded", {"result": {"x": 1}}) == 0
    assert store.finish(job.id, "t2", "succeeded", {"result": {"x": 2}}) == 1
    got = store.get(job.id)
    assert got is not None and got.result == {"x": 2}


def test_cancel_while_running_discards_the_late_result(store: JobStore) -> None:
    job = make_job(store)
    store.begin(job.id, "t", 5, 5)
    outcome, _ = store.terminate(job.id, "cancelled", Conflict("cancelled", code="cancelled"))
    assert outcome == "ok"
    assert store.finish(job.id, "t", "succeeded", {"result": {"late": True}}) == -1
    got = store.get(job.id)
    assert got is not None and got.status == "cancelled" and got.result is None
    assert store.r.exists(KEYS.lease(job.id)) == 0
    again, previous = store.terminate(job.id, "cancelled", Conflict("x"))
    assert (again, previous) == ("terminal", "cancelled")


def test_expired_lease_is_reclaimed_once(store: JobStore) -> None:
    job = make_job(store)
    store.begin(job.id, "t", 0.2, 5)
    assert store.expired_leases(time.time()) == []
    time.sleep(0.3)
    assert store.expired_leases(time.time()) == [job.id]
    assert store.reclaim(job.id) == "normal"
    assert store.reclaim(job.id) is None  # a second reaper gets nothing
    got = store.get(job.id)
    assert got is not None and got.status == "queued"


def test_live_leases_scored_by_a_skewed_clock_never_hide_a_lost_job(store: JobStore) -> None:
    # A worker whose clock runs behind scores its leases in the past: live leases that look
    # expired, more than the reaper reads at once, all older than a job truly lost.
    stale = time.time() - 100
    skewed = [make_job(store) for _ in range(LEASE_PAGE + 1)]
    for job in skewed:
        store.begin(job.id, "skewed", 30, 5)
    lost = make_job(store)
    store.begin(lost.id, "gone", 30, 5)
    store.r.delete(KEYS.lease(lost.id))  # its worker vanished
    store.r.zadd(KEYS.inflight, {**{j.id: stale for j in skewed}, lost.id: stale + 1})
    sent: list[str] = []
    celery = SimpleNamespace(send_task=lambda *a, **kw: sent.append(kw["args"][0]))
    ctx = cast(Any, SimpleNamespace(stores=SimpleNamespace(jobs=store), celery=celery))

    assert sweep_leases(ctx) == 1 and sent == [lost.id]
    got = store.get(lost.id)
    assert got is not None and got.status == "queued"
    # The live ones stay with their worker, re-scored to when their lease really ends.
    assert set(store.r.mget([KEYS.lease(j.id) for j in skewed])) == {"skewed"}
    assert store.expired_leases(time.time()) == []
    # An entry its worker removed meanwhile is not put back by the re-scoring.
    store.r.zrem(KEYS.inflight, skewed[0].id)
    assert store.reclaim(skewed[0].id) is None
    assert store.r.zscore(KEYS.inflight, skewed[0].id) is None


def test_renewal_keeps_a_lease_alive_and_fails_once_lost(store: JobStore) -> None:
    job = make_job(store)
    store.begin(job.id, "t", 0.3, 5)
    for _ in range(3):
        time.sleep(0.15)
        assert store.renew(job.id, "t", 0.3)
    assert store.expired_leases(time.time()) == []
    store.r.set(KEYS.lease(job.id), "another-worker")  # lost: someone else runs it now
    assert not store.renew(job.id, "t", 0.3)


def test_release_gives_the_job_back(store: JobStore) -> None:
    job = make_job(store)
    store.begin(job.id, "t", 5, 5)
    assert not store.release(job.id, "other")
    assert store.release(job.id, "t")
    got = store.get(job.id)
    assert got is not None and got.status == "queued"
    # A released delivery ended cleanly (a shutdown): it does not count against the job.
    assert store.begin(job.id, "t2", 5, 5).deliveries == 1


def test_releases_by_rolling_restarts_never_use_up_the_deliveries(store: JobStore) -> None:
    job = make_job(store)
    for n in range(3 * 2 + 1):  # released seven times with max_deliveries 2
        assert store.begin(job.id, f"t{n}", 5, 2).outcome is Begin.OK
        assert store.release(job.id, f"t{n}")
        assert not store.release(job.id, f"t{n}")  # a repeat gives back nothing more
    last = store.begin(job.id, "last", 5, 2)
    assert last.outcome is Begin.OK and last.deliveries == 1


def test_a_queued_job_not_begun_in_time_is_redelivered_once(store: JobStore) -> None:
    job = make_job(store)
    started = make_job(store)
    store.begin(started.id, "t", 5, 5)  # begun: no longer pending
    cutoff = time.time() + 1
    assert store.stale_pending("normal", cutoff) == [job.id]
    assert store.redeliver("normal", job.id, cutoff) == "normal"
    assert store.redeliver("normal", job.id, cutoff - 2) is None  # re-scored: skipped
    assert store.stale_pending("normal", cutoff - 2) == []
    store.terminate(job.id, "cancelled", Conflict("x"))
    assert store.redeliver("normal", job.id, time.time() + 10) is None
    assert store.stale_pending("normal", time.time() + 10) == []


def test_deliveries_are_capped(store: JobStore) -> None:
    job = make_job(store)
    for n in range(1, 3):
        assert store.begin(job.id, f"t{n}", 5, 2).outcome is Begin.OK
        store.r.delete(KEYS.lease(job.id))  # its worker vanished: the lease lapsed
        assert store.reclaim(job.id) == "normal"
    exhausted = store.begin(job.id, "t3", 5, 2)
    assert exhausted.outcome is Begin.EXHAUSTED and exhausted.deliveries == 3
    assert store.finish(job.id, "t3", "failed", {}) == 1  # the lease is held to fail it


def _race_begin(url: str, ids: list[str], worker: int, out: multiprocessing.Queue) -> None:
    store = JobStore(redis.Redis.from_url(url, decode_responses=True), KEYS, 3600)
    won = [i for i in ids if store.begin(i, f"w{worker}", 30, 5).outcome is Begin.OK]
    finished = [i for i in won if store.finish(i, f"w{worker}", "succeeded", {}) == 1]
    out.put((won, finished))


def test_processes_racing_for_the_same_jobs_each_job_runs_once(
    store: JobStore, redis_db: str
) -> None:
    ids = [make_job(store).id for _ in range(200)]
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_race_begin, args=(redis_db, ids, w, out)) for w in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    won = [i for w, _ in results for i in w]
    finished = [i for _, f in results for i in f]
    assert sorted(won) == sorted(ids)  # every job taken exactly once across processes
    assert sorted(finished) == sorted(ids)


def test_begin_reads_the_hinted_breaker_with_the_lease(store: JobStore) -> None:
    hint = f"{KEYS.breaker('p')}\n{KEYS.health('p')}"
    job = make_job(store, breaker_hint=hint)
    begun = store.begin(job.id, "t1", 30, 5)
    assert begun.outcome is Begin.OK
    assert begun.breaker_peek == ("closed", "")  # nothing recorded yet: closed, not unhealthy
    assert begun.job is not None and begun.job.breaker_hint == hint
    store.release(job.id, "t1")
    store.r.hset(KEYS.breaker("p"), "state", "open")
    store.r.hset(KEYS.health("p"), "healthy", "0")
    assert store.begin(job.id, "t2", 30, 5).breaker_peek == ("open", "0")
    plain = make_job(store)  # no hint: nothing read
    assert store.begin(plain.id, "t3", 30, 5).breaker_peek is None

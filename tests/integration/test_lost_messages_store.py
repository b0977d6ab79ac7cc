"""What the pending sweep reads to find a job whose broker message was lost, and what a late
write may not do to a record that is gone: the job store's scripts against a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis

from shared.keys import Keys
from shared.state.jobs import Begin, JobStore
from tests.support.jobs import queued_job
from workers.reaper import LOST_GRACE_S, lost_cutoff

KEYS = Keys("gw")


@pytest.fixture
def store(redis_db: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_db, decode_responses=True), KEYS, 3600)


def test_a_begun_job_raises_its_priority_mark_to_its_publish_time(store: JobStore) -> None:
    older = queued_job(created_at=time.time() - 30)
    newer = queued_job(created_at=time.time() - 10)
    store.create(older)
    store.create(newer)
    assert store.pending_marks() == {}
    assert store.begin(newer.id, "t", 5, 5).outcome is Begin.OK
    assert store.pending_marks() == {"normal": pytest.approx(newer.created_at)}
    # An older job beginning later never lowers the mark.
    store.begin(older.id, "t", 5, 5)
    assert store.pending_marks() == {"normal": pytest.approx(newer.created_at)}


def test_a_job_held_for_a_slot_by_a_live_worker_is_not_redelivered_until_the_claim_lapses(
    store: JobStore,
) -> None:
    job = queued_job(created_at=time.time() - 60)
    store.create(job)
    cutoff = time.time()
    store.hold_waiting([job.id], 30)
    assert store.redeliver("normal", job.id, cutoff) is None
    assert store.r.zscore(KEYS.pending("normal"), job.id) == pytest.approx(job.created_at)
    store.r.zadd(KEYS.taken, {job.id: 1})  # its worker died: the claim lapsed long ago
    assert store.redeliver("normal", job.id, cutoff) == "normal"
    assert store.r.zscore(KEYS.taken, job.id) is None
    # Claimed once: re-scored to now, so a second sweeper with the same cutoff skips it.
    assert store.redeliver("normal", job.id, cutoff) is None


def test_a_claim_is_scored_by_redis_clock_and_claims_the_group_too(store: JobStore) -> None:
    job = queued_job()
    store.create(job)
    seconds, micros = store.r.time()
    store.hold_waiting([job.id], 30, ["gateway.normal"])
    assert store.r.zscore(KEYS.taken, job.id) == pytest.approx(seconds + micros / 1e6 + 30, abs=2)
    assert 0 < store.r.pttl(KEYS.group_held("gateway.normal")) <= 30_000


def test_beginning_drops_the_slot_claim(store: JobStore) -> None:
    job = queued_job()
    store.create(job)
    store.hold_waiting([job.id], 30)
    store.begin(job.id, "t", 5, 5)
    assert store.r.zscore(KEYS.taken, job.id) is None


def test_a_job_whose_record_is_gone_leaves_the_pending_set_when_a_worker_tries_it(
    store: JobStore,
) -> None:
    job = queued_job()
    store.create(job)
    store.r.delete(KEYS.job(job.id))  # its keeping time ran out while it waited
    assert store.begin(job.id, "t", 5, 5).outcome is Begin.MISSING
    assert store.r.zscore(KEYS.pending("normal"), job.id) is None


def test_a_late_finish_or_write_never_recreates_an_expired_record(store: JobStore) -> None:
    job = queued_job()
    store.create(job)
    store.begin(job.id, "t", 5, 5)
    store.r.delete(KEYS.job(job.id))  # e.g. a batch line's record shortened, then gone
    assert store.finish(job.id, "t", "failed", {"error": {"message": "late"}}) == -1
    assert store.r.exists(KEYS.job(job.id)) == 0
    assert store.r.lrange(KEYS.recent_failed, 0, -1) == []

    other = queued_job()
    store.create(other)
    store.begin(other.id, "t2", 5, 5)
    store.r.delete(KEYS.job(other.id))
    assert store.update(other.id, "t2", {"provider": "mock"}) is False
    assert store.defer(other.id, "t2", time.time() + 5, "retrying", {}) == -1
    assert store.r.exists(KEYS.job(other.id)) == 0


@pytest.mark.parametrize(
    ("mark", "empty", "backstop", "expected"),
    [
        (None, False, None, None),  # nothing begun, messages waiting: nothing is known lost
        (None, True, None, 1000 - LOST_GRACE_S),  # nothing left to hand out
        (990.0, False, None, 990 - LOST_GRACE_S),  # a job published at 990 began
        (1010.0, False, None, 1000 - LOST_GRACE_S),  # a skewed clock: never within the grace
        (None, False, 120.0, 880.0),  # a broker elsewhere: the slow backstop
        (990.0, False, 120.0, 990 - LOST_GRACE_S),
    ],
)
def test_the_lost_cutoff(
    mark: float | None, empty: bool, backstop: float | None, expected: float | None
) -> None:
    assert lost_cutoff(1000.0, mark, empty, backstop) == expected


def test_a_repeated_begin_answers_as_the_first_did_without_counting_a_delivery(
    store: JobStore,
) -> None:
    # redis-py re-sends a step whose reply was lost: the same token, the same arguments.
    job = queued_job()
    store.create(job)
    first = store.begin(job.id, "t", 5, 5)
    again = store.begin(job.id, "t", 5, 5)
    assert first.outcome is Begin.OK and again.outcome is Begin.OK
    assert again.deliveries == 1 and again.job is not None and again.job.id == job.id
    assert store.begin(job.id, "other", 5, 5).outcome is Begin.LEASED


def test_a_repeated_finish_answers_written_again_and_writes_nothing_more(
    store: JobStore,
) -> None:
    job = queued_job()
    store.create(job)
    store.begin(job.id, "t", 5, 5)
    now = str(time.time())
    args = ["t", job.id, "succeeded", now, 3600, KEYS.done_channel, job.id, "result", "{}"]
    keys = [
        KEYS.job(job.id),
        KEYS.lease(job.id),
        KEYS.inflight,
        KEYS.stats,
        KEYS.webhook_outbox,
        KEYS.stats_minute(int(float(now) // 60)),
        KEYS.recent_failed,
        KEYS.slim_due,
    ]
    assert store._finish(keys=keys, args=args) == 1
    assert store._finish(keys=keys, args=args) == 1
    assert store.r.hget(KEYS.stats, "jobs_succeeded") == "1"  # counted once
    # A different, later finish (another delivery) is still refused.
    assert store.finish(job.id, "t", "failed", {}) == -1

"""Sweeps that make sure an accepted job runs (each one of the fleet's duties,
``workers.duties``, run inside the worker processes under a fenced lease).

- ``sweep_leases``: republishes jobs whose worker vanished (SIGKILL, lost host): their lease
  expired while they were running.
- ``sweep_pending``: republishes queued jobs whose broker message was lost (a worker killed or
  cut off between taking a message and beginning its job; an API process that died between
  creating a job and publishing it), within seconds.
- ``sweep_due``: republishes parked jobs (retry backoff, waiting for recovery) when due.

Each job is claimed by one Lua script before it is republished, so two sweepers (a lease that
changed hands mid-sweep, an optional beat) never republish a job twice. ``held`` is the
duty lease's state: a sweeper that lost its lease stops before its next claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared import metrics
from shared.celery_app import QUEUES, enqueue
from shared.state.job_record import PRIORITIES
from workers.context import WorkerContext

log = logging.getLogger(__name__)
Held = Callable[[], bool]
# A message between its pop and its job's begin, and the clock skew between the API hosts that
# score the pending sets, are allowed this long before a job is taken for lost.
LOST_GRACE_S = 5.0
# The lease reaper reads the inflight set this many entries at a time, oldest first, and at
# most this many pages in one sweep (live leases it meets are re-scored past the sweep's time
# by reclaim.lua, so the next page reaches the entries behind them).
LEASE_PAGE = 500
LEASE_PAGES = 20
# A lapsed claim of a waiting job (``Keys.taken``) is swept with its job; one whose job ended
# some other way (cancelled while waiting) is forgotten after this.
TAKEN_KEPT_S = 3600.0
# The pending sweep reads this many entries a page, and at most this many pages a run.
PAGE = 500
PAGES = 20


def _always() -> bool:
    return True


def _republish(
    ctx: WorkerContext,
    ids: list[str],
    claim: Callable[[str], str | None],
    on_fail: Callable[[str], None],
    what: str,
    held: Held,
    level: int = logging.WARNING,
) -> int:
    count = 0
    for job_id in ids:
        if not held():
            break
        priority = claim(job_id)
        if priority is None:
            continue
        try:
            enqueue(ctx.celery, job_id, priority)
        except Exception:
            log.exception("republish failed; the next sweep retries", extra={"job_id": job_id})
            on_fail(job_id)
            continue
        count += 1
        log.log(level, what, extra={"job_id": job_id})
    return count


def sweep_leases(ctx: WorkerContext, held: Held = _always) -> int:
    """Republish the jobs whose lease expired. More than a page of entries that look expired
    but whose lease is live (a worker whose clock runs behind) does not hide the lost ones:
    the sweep reads on past them. An entry met again (its republish failed) ends the sweep."""
    now = time.time()
    n = 0
    seen: set[str] = set()
    for _ in range(LEASE_PAGES):
        page = ctx.stores.jobs.expired_leases(now, LEASE_PAGE)
        fresh = [job_id for job_id in page if job_id not in seen]
        seen.update(fresh)
        n += _republish(
            ctx,
            fresh,
            ctx.stores.jobs.reclaim,
            lambda job_id: ctx.stores.jobs.track(job_id, now),
            "job reclaimed from a lost worker",
            held,
        )
        if len(page) < LEASE_PAGE or len(fresh) < len(page) or not held():
            break
    metrics.LEASES_RECLAIMED.inc(n)
    return n


def sweep_pending(ctx: WorkerContext, held: Held = _always) -> int:
    """Republish queued jobs whose broker message was lost: taken by a worker that was killed or
    cut off before it began them, or (a broker other than this Redis) never published by an API
    process that died. Such a job is found within seconds, not after a long timeout:

    - each broker queue hands its messages out in order, so once a job published after it
      (by more than ``LOST_GRACE_S``, which covers clock skew between API hosts) has begun
      (``Keys.pending_marks``), its message was taken;
    - with the broker in this Redis, a queue with no message left has nothing more to hand
      out, so a job still queued ``LOST_GRACE_S`` after its publish will never be;

    and no live worker holds it while it waits for a slot (``workers/waiting.py``). A broker
    elsewhere (RabbitMQ) gives no queue length here: a job that no later job passes is
    republished after ``queue.redeliver_after_s``. A republish that was not needed costs one
    message: ``begin.lua`` skips a job that is leased or already ended."""
    now = time.time()
    jobs = ctx.stores.jobs
    marks = jobs.pending_marks()
    empty: set[str] = set()
    if ctx.inline_publish:
        lengths = jobs.broker_lengths([QUEUES[p] for p in PRIORITIES])
        empty = {p for p, n in zip(PRIORITIES, lengths, strict=True) if n == 0}
    jobs.trim_taken(now - TAKEN_KEPT_S)
    count = 0
    for priority in PRIORITIES:
        cutoff = lost_cutoff(
            now,
            marks.get(priority),
            priority in empty,
            None if ctx.inline_publish else ctx.settings.queue.redeliver_after_s,
        )
        if cutoff is None:
            continue
        if ctx.inline_publish:
            # Jobs gathered behind a group message that is outstanding, or whose first job a live
            # worker holds waiting for a slot, are waiting, not lost: nothing from the group's
            # oldest on is taken (a group whose message died with its worker is not spared).
            oldest, alive = jobs.group_alive(priority, QUEUES[priority])
            if alive and oldest is not None:
                cutoff = min(cutoff, oldest - LOST_GRACE_S)
        count += _sweep_lost(ctx, priority, cutoff, held)
    metrics.LOST_MESSAGES_REPUBLISHED.inc(count)
    return count


def _sweep_lost(ctx: WorkerContext, priority: str, cutoff: float, held: Held) -> int:
    """Republish the lost ones among the jobs published at or before ``cutoff``, reading past
    those a live worker holds (they stay where they are) up to ``PAGES`` pages."""
    jobs = ctx.stores.jobs
    count = skipped = 0
    for _ in range(PAGES):
        ids = jobs.stale_pending(priority, cutoff, PAGE, offset=skipped)
        done = _republish(
            ctx,
            ids,
            lambda job_id: jobs.redeliver(priority, job_id, cutoff),
            lambda job_id: None,  # re-scored already: retried after the delay
            "queued job republished (its broker message was lost)",
            held,
        )
        count += done
        skipped += len(ids) - done  # held by a live worker, or no longer queued (dropped)
        if len(ids) < PAGE or not held():
            break
    return count


def lost_cutoff(
    now: float, mark: float | None, queue_empty: bool, redeliver_after_s: float | None
) -> float | None:
    """The latest publish time at which a job still queued (and held by no live worker) is
    taken for lost; None: none is."""
    cutoffs = []
    if queue_empty:
        cutoffs.append(now - LOST_GRACE_S)
    elif mark is not None:
        cutoffs.append(min(now - LOST_GRACE_S, mark - LOST_GRACE_S))
    if redeliver_after_s is not None:
        cutoffs.append(now - redeliver_after_s)
    return max(cutoffs) if cutoffs else None


def sweep_due(ctx: WorkerContext, held: Held = _always) -> int:
    now = time.time()
    return _republish(
        ctx,
        ctx.stores.jobs.due_jobs(now),
        ctx.stores.jobs.claim_due,
        lambda job_id: ctx.stores.jobs.park_again(job_id, now + 1),
        "parked job republished",
        held,
        logging.INFO,  # routine: every retry passes here
    )

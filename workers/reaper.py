"""Sweeps that make sure an accepted job runs (each one of the fleet's duties,
``workers.duties``, run inside the worker processes under a fenced lease).

- ``sweep_leases``: republishes jobs whose worker vanished (SIGKILL, lost host): their lease
  expired while they were running.
- ``sweep_pending``: republishes jobs still queued ``queue.redeliver_after_s`` after their
  publish, in case the broker lost the message.
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
from shared.celery_app import enqueue
from shared.state.job_record import PRIORITIES
from workers.context import WorkerContext

log = logging.getLogger(__name__)
Held = Callable[[], bool]


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
    now = time.time()
    n = _republish(
        ctx,
        ctx.stores.jobs.expired_leases(now),
        ctx.stores.jobs.reclaim,
        lambda job_id: ctx.stores.jobs.track(job_id, now),
        "job reclaimed from a lost worker",
        held,
    )
    metrics.LEASES_RECLAIMED.inc(n)
    return n


def sweep_pending(ctx: WorkerContext, held: Held = _always) -> int:
    cutoff = time.time() - ctx.settings.queue.redeliver_after_s
    count = 0
    for priority in PRIORITIES:
        count += _republish(
            ctx,
            ctx.stores.jobs.stale_pending(priority, cutoff),
            lambda job_id, p=priority: ctx.stores.jobs.redeliver(p, job_id, cutoff),  # type: ignore[misc]
            lambda job_id: None,  # re-scored already: retried after the delay
            "queued job republished (its message was not consumed in time)",
            held,
        )
    return count


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

"""Sweeps that make sure an accepted job runs: run from beat on the control queue.

- ``sweep_leases``: republishes jobs whose worker vanished (SIGKILL, lost host): their lease
  expired while they were running.
- ``sweep_pending``: republishes jobs still queued ``queue.redeliver_after_s`` after their
  publish, in case the broker lost the message.
- ``sweep_due``: republishes parked jobs (retry backoff, waiting for recovery) when due.

A Redis lock makes one sweep of a kind run at a time across the fleet, and each job is
claimed by one Lua script, so two beats never republish a job twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shared import metrics
from shared.celery_app import enqueue
from workers.context import WorkerContext

log = logging.getLogger(__name__)


@contextmanager
def _locked(ctx: WorkerContext, name: str) -> Iterator[bool]:
    key = ctx.keys.lock(name)
    token = secrets.token_hex(8)
    ttl_ms = int(max(1.0, ctx.settings.worker.reaper_interval_s) * 1000)
    acquired = bool(ctx.redis.set(key, token, nx=True, px=ttl_ms))
    try:
        yield acquired
    finally:
        # Release only our own lock (a slow sweep must not free a newer one).
        if acquired and ctx.redis.get(key) == token:
            ctx.redis.delete(key)


def _republish(
    ctx: WorkerContext,
    ids: list[str],
    claim: Callable[[str], str | None],
    on_fail: Callable[[str], None],
    what: str,
    level: int = logging.WARNING,
) -> int:
    count = 0
    for job_id in ids:
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


def sweep_leases(ctx: WorkerContext) -> int:
    with _locked(ctx, "sweep_leases") as acquired:
        if not acquired:
            return 0
        now = time.time()
        n = _republish(
            ctx,
            ctx.store.expired_leases(now),
            ctx.store.reclaim,
            lambda job_id: ctx.store.track(job_id, now),
            "job reclaimed from a lost worker",
        )
        metrics.LEASES_RECLAIMED.inc(n)
        return n


def sweep_pending(ctx: WorkerContext) -> int:
    with _locked(ctx, "sweep_pending") as acquired:
        if not acquired:
            return 0
        cutoff = time.time() - ctx.settings.queue.redeliver_after_s
        return _republish(
            ctx,
            ctx.store.stale_pending(cutoff),
            lambda job_id: ctx.store.redeliver(job_id, cutoff),
            lambda job_id: None,  # re-scored already: retried after the delay
            "queued job republished (its message was not consumed in time)",
        )


def sweep_due(ctx: WorkerContext) -> int:
    with _locked(ctx, "sweep_due") as acquired:
        if not acquired:
            return 0
        now = time.time()
        return _republish(
            ctx,
            ctx.store.due_jobs(now),
            ctx.store.claim_due,
            lambda job_id: ctx.store.park_again(job_id, now + 1),
            "parked job republished",
            logging.INFO,  # routine: every retry passes here
        )

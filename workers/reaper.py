"""The lease reaper: republishes jobs whose worker vanished (SIGKILL, lost host).

Runs from beat on the control queue; a Redis lock makes one sweep run at a time across the
fleet, and ``reclaim.lua`` claims each job atomically, so two beats never republish twice.
"""

from __future__ import annotations

import logging
import secrets
import time

from shared import metrics
from shared.celery_app import enqueue
from workers.context import WorkerContext

log = logging.getLogger(__name__)


def sweep_leases(ctx: WorkerContext) -> int:
    lock_key = ctx.keys.lock("sweep_leases")
    token = secrets.token_hex(8)
    lock_ms = int(max(1.0, ctx.settings.worker.reaper_interval_s) * 1000)
    if not ctx.redis.set(lock_key, token, nx=True, px=lock_ms):
        return 0
    republished = 0
    try:
        now = time.time()
        for job_id in ctx.store.expired_leases(now):
            priority = ctx.store.reclaim(job_id)
            if priority is None:
                continue
            try:
                enqueue(ctx.celery, job_id, priority)
            except Exception:
                log.exception("republish failed; will retry", extra={"job_id": job_id})
                ctx.store.track(job_id, now)
                continue
            republished += 1
            metrics.LEASES_RECLAIMED.inc()
            log.warning("job reclaimed from a lost worker", extra={"job_id": job_id})
    finally:
        # Release only our own lock (a slow sweep must not free a newer one).
        if ctx.redis.get(lock_key) == token:
            ctx.redis.delete(lock_key)
    return republished

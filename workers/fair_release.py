"""The worker's side of fair share (``shared/state/fair.py``): release a key's held jobs as its
window frees, after a job of its begins and, for whatever a lost worker left, in the fair
sweep (a fleet duty)."""

from __future__ import annotations

import logging
import time

from shared.celery_app import QUEUES, enqueue
from shared.state import fair
from shared.state.job_record import PRIORITIES
from shared.wire.task_message import GROUP_TTL_MS, run_group_message
from workers.context import WorkerContext

log = logging.getLogger(__name__)


def release(ctx: WorkerContext, priority: str, owner: str) -> int:
    """Release the key's next held jobs at ``priority`` (as many as its window has room for);
    returns how many. A failed publish leaves them pending: the pending sweep redelivers."""
    s = ctx.settings
    window = fair.room(s, owner)
    if window <= 0:  # fair share was turned off: release everything held
        window = 2**31
    queue = QUEUES[priority]
    now = time.time()
    message = run_group_message(queue) if ctx.inline_publish else None
    ids = ctx.stores.fair.release(
        priority,
        owner,
        window,
        now - s.queue.redeliver_after_s,
        now,
        queue,
        message,
        GROUP_TTL_MS,
    )
    if message is None:
        for job_id in ids:
            try:
                enqueue(ctx.celery, job_id, priority)
            except Exception:
                log.warning("could not publish a released job", extra={"job_id": job_id})
    return len(ids)


def sweep_fair(ctx: WorkerContext, held: object = None) -> int:
    """Release every backlogged key's room (a fleet duty: catches a window freed by a cancel,
    a lost message's lapse, or a worker lost between a begin and its release)."""
    count = 0
    for priority in PRIORITIES:
        for owner in ctx.stores.fair.backlogged(priority):
            count += release(ctx, priority, owner)
    return count

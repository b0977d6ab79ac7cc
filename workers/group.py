"""Runs a group message: the jobs ``create.lua`` gathered for one queue while an earlier
message for it waited in the broker (group commit).

Celery's per-message cost (BRPOP, kombu's unacked bookkeeping, decoding, the trace, the ack)
is paid once per group; every guarantee stays per job, because each job still goes through
``JobRunner.run``: its own lease (``begin.lua``), exactly-once result, cancel, deadline and
delivery count. A job begins only when it has a slot (``workers.job_slots``); until then it
is in the pending set, so if this worker is lost the pending sweep redelivers it, on its
own (a group is never redelivered whole: its ids were taken from the list, so a poison job
cannot burn its group-mates' deliveries). The message is acked when the slowest job ends.
"""

from __future__ import annotations

import logging
import threading

from celery.exceptions import Reject

from shared.celery_app import QUEUES, enqueue
from shared.task_message import GROUP_TTL_MS, run_group_message
from workers import job_slots
from workers.context import WorkerContext
from workers.lease import STOPPING
from workers.runner import JobRunner, until_redis_answers

log = logging.getLogger(__name__)
PRIORITY_OF = {queue: priority for priority, queue in QUEUES.items()}


def run_group(ctx: WorkerContext, queue: str, first: str = "") -> int:
    """Run ``first`` (the job whose message this is) at once, take the queue's gathered jobs
    (no more than this process has free slots for, so each begins at once) and run each in a
    slot of its own; returns how many jobs ran."""
    if STOPPING.is_set():  # back to the queue for another worker
        raise Reject("this worker is stopping", requeue=True)
    slots = job_slots.SLOTS
    threads = []
    if first:  # not held back by the take: its lease is taken while the group is
        threads.append(_start(ctx, first, queue))
    ids = until_redis_answers(
        "taking a group",
        queue,
        lambda: ctx.store.take_group(
            queue, slots.free(), run_group_message(queue), GROUP_TTL_MS
        ),
    )
    if len(ids) == 1 and not threads:
        run_one(ctx, ids[0], queue)
        return 1
    threads += [_start(ctx, job_id, queue) for job_id in ids]
    for t in threads:
        t.join()
    return len(threads)


def _start(ctx: WorkerContext, job_id: str, queue: str) -> threading.Thread:
    t = threading.Thread(target=run_one, args=(ctx, job_id, queue), name=f"job-{job_id}")
    t.start()
    return t


def run_one(ctx: WorkerContext, job_id: str, queue: str) -> None:
    with job_slots.SLOTS.slot():
        try:
            JobRunner(ctx).run(job_id)
        except Reject:  # this worker began to stop: the job goes back on its own message
            try:
                enqueue(ctx.celery, job_id, PRIORITY_OF.get(queue, "normal"))
            except Exception:  # still pending: the pending sweep redelivers it
                log.warning("could not hand a job back", extra={"job_id": job_id})
        except Exception:  # one job's failure is not its group-mates': its lease recovers it
            log.exception("job crashed", extra={"job_id": job_id})

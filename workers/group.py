"""Runs a group message: the jobs ``create.lua`` gathered for one queue while an earlier
message for it waited in the broker (group commit).

Celery's per-message cost (BRPOP, decoding, the trace, the ack)
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
from collections.abc import Callable
from typing import Any

from celery.exceptions import Reject

from shared.celery_app import QUEUES, enqueue
from shared.state.jobs import GroupTake
from shared.wire.task_message import GROUP_TTL_MS, run_group_message
from workers import job_slots
from workers.context import WorkerContext
from workers.lease import STOPPING
from workers.redis_wait import until_redis_answers
from workers.runner import JobRunner
from workers.waiting import WAITING

log = logging.getLogger(__name__)
FIRST_HEAD_START_S = 0.05
PRIORITY_OF = {queue: priority for priority, queue in QUEUES.items()}


def run_group(ctx: WorkerContext, queue: str, first: str = "") -> int:
    """Run ``first`` (the job whose message this is) at once, take the queue's gathered jobs
    (no more than this process has free slots for, so each begins at once) and run each in a
    slot of its own; returns how many jobs ran."""
    if STOPPING.is_set():  # back to the queue for another worker
        raise Reject("this worker is stopping", requeue=True)
    if not first:
        return _take_and_run(ctx, queue)
    # The group is taken in the first job's own step (begin.lua with group_take.lua: no
    # round trip of its own), and its jobs start once that job's provider call is under way
    # (or after FIRST_HEAD_START_S): started earlier, they stood between the job's lease and
    # its call on the sync path; now they overlap the call.
    calling = threading.Event()
    # This job holds one of the free slots; most=0 would mean "all" to LRANGE.
    take = GroupTake(
        queue, max(1, job_slots.SLOTS.free() - 1), run_group_message(queue), GROUP_TTL_MS
    )
    runner = JobRunner(ctx, calling, take)

    def run_rest() -> int:
        calling.wait(FIRST_HEAD_START_S)
        runner.began.wait()
        if runner.taken is None:  # the first job ended before its step: take the group now
            return _take_and_run(ctx, queue)
        return _run_ids(ctx, queue, runner.taken)

    rest = _Soon(run_rest)
    try:
        run_one(ctx, first, queue, runner=runner)
    finally:
        calling.set()
        runner.began.set()
    return 1 + rest.result()


def _take_and_run(ctx: WorkerContext, queue: str) -> int:
    ids = until_redis_answers(
        "taking a group",
        queue,
        lambda: ctx.stores.jobs.take_group(
            GroupTake(queue, job_slots.SLOTS.free(), run_group_message(queue), GROUP_TTL_MS)
        ),
    )
    return _run_ids(ctx, queue, ids)


def _run_ids(ctx: WorkerContext, queue: str, ids: list[str]) -> int:
    """Run each job in a slot of its own (the caller took no more than the free slots)."""
    if not ids:
        return 0
    if len(ids) == 1:
        run_one(ctx, ids[0], queue)
        return 1
    threads = [
        threading.Thread(target=run_one, args=(ctx, job_id, queue), name=f"job-{job_id}")
        for job_id in ids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(threads)


class _Soon:
    """Runs ``step`` in the background, starting at the next turn of gevent's loop (a
    thread's start would switch to it at once) or, without gevent, in a thread."""

    def __init__(self, step: Callable[[], int]) -> None:
        self._value = 0
        self._error: BaseException | None = None
        self._step = step
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            import gevent

            self._greenlet: Any = gevent.spawn(self._run)
            self._thread: threading.Thread | None = None
        else:
            self._greenlet = None
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._step()
        except BaseException as exc:  # handed to whoever waits for the result
            self._error = exc

    def result(self) -> int:
        if self._greenlet is not None:
            self._greenlet.join()
        elif self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def run_one(ctx: WorkerContext, job_id: str, queue: str, runner: JobRunner | None = None) -> None:
    # The first job of a group message (a runner taking a group) holds the group while it waits.
    group = queue if runner is not None and runner.group is not None else ""
    with job_slots.SLOTS.slot(lambda: WAITING.hold(ctx, job_id, group)):
        try:
            (runner or JobRunner(ctx)).run(job_id)
        except Reject:  # this worker began to stop: the job goes back on its own message
            try:
                enqueue(ctx.celery, job_id, PRIORITY_OF.get(queue, "normal"))
            except Exception:  # still pending: the pending sweep redelivers it
                log.warning("could not hand a job back", extra={"job_id": job_id})
        except Exception:  # one job's failure is not its group-mates': its lease recovers it
            log.exception("job crashed", extra={"job_id": job_id})

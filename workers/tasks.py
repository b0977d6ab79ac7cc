"""Celery tasks. Each takes only ids: no prompt, no secret ever travels in a message."""

from __future__ import annotations

from celery import shared_task

from shared.celery_app import TASK_RUN_JOB, TASK_SWEEP_LEASES, TASK_SWEEP_PENDING
from workers.context import get_context
from workers.reaper import sweep_leases, sweep_pending
from workers.runner import JobRunner


@shared_task(name=TASK_RUN_JOB, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> None:
    JobRunner(get_context()).run(job_id)


@shared_task(name=TASK_SWEEP_LEASES, ignore_result=True)
def sweep_leases_task() -> int:
    return sweep_leases(get_context())


@shared_task(name=TASK_SWEEP_PENDING, ignore_result=True)
def sweep_pending_task() -> int:
    return sweep_pending(get_context())

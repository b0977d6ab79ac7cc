"""Celery tasks. Each takes only ids: no prompt, no secret ever travels in a message."""

from __future__ import annotations

from celery import shared_task

from shared.celery_app import (
    TASK_HEALTH_CHECK,
    TASK_RUN_JOB,
    TASK_SWEEP_DUE,
    TASK_SWEEP_LEASES,
    TASK_SWEEP_PENDING,
)
from workers.context import get_context
from workers.health import check_all
from workers.reaper import sweep_due, sweep_leases, sweep_pending
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


@shared_task(name=TASK_SWEEP_DUE, ignore_result=True)
def sweep_due_task() -> int:
    return sweep_due(get_context())


@shared_task(name=TASK_HEALTH_CHECK, ignore_result=True)
def health_check_task() -> dict[str, bool]:
    ctx = get_context()
    s = ctx.settings
    lock = ctx.keys.lock("health_check")
    if not ctx.redis.set(lock, "1", nx=True, px=int(s.health.interval_s * 900)):
        return {}  # another worker checked within this interval
    return check_all(dict(s.providers), ctx.health, s.health.timeout_s, s.health.interval_s)

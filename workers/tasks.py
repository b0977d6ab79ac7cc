"""Celery tasks. Each takes only ids: no prompt, no secret ever travels in a message.

The sweep tasks exist for an optional ``llm-gateway beat``: each runs its duty once unless a
worker holds that duty's lease (``workers.duties``), which is the normal case.
"""

from __future__ import annotations

from celery import shared_task

from shared.celery_app import (
    TASK_HEALTH_CHECK,
    TASK_RUN_GROUP,
    TASK_RUN_JOB,
    TASK_SWEEP_DUE,
    TASK_SWEEP_LEASES,
    TASK_SWEEP_PENDING,
)
from workers import job_slots
from workers.context import get_context
from workers.duties import run_once
from workers.group import run_group
from workers.runner import JobRunner
from workers.waiting import WAITING


@shared_task(name=TASK_RUN_JOB, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> None:
    ctx = get_context()
    with job_slots.SLOTS.slot(lambda: WAITING.hold(ctx, job_id)):
        JobRunner(ctx).run(job_id)


@shared_task(name=TASK_RUN_GROUP, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_group_task(queue: str, first: str = "") -> None:
    run_group(get_context(), queue, first)


@shared_task(name=TASK_SWEEP_LEASES, ignore_result=True)
def sweep_leases_task() -> None:
    run_once(get_context(), "sweep_leases")


@shared_task(name=TASK_SWEEP_PENDING, ignore_result=True)
def sweep_pending_task() -> None:
    run_once(get_context(), "sweep_pending")


@shared_task(name=TASK_SWEEP_DUE, ignore_result=True)
def sweep_due_task() -> None:
    run_once(get_context(), "sweep_due")


@shared_task(name=TASK_HEALTH_CHECK, ignore_result=True)
def health_check_task() -> None:
    run_once(get_context(), "health_check")

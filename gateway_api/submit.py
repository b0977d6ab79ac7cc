"""Job creation: a parsed request (``gateway_api.parsing``) becomes a finished job (a cache
hit) or a queued one, for the admission step (``gateway_api.admission``) both POST routes go
through.

The record and its task message are written in one step when the broker is the job store's
Redis (``create.lua``); with another broker the record is written first, so a worker never
sees a task without a job, and a failed publish marks the job failed and answers 503: a 202
means the job is in the broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify

from gateway_api import budget, repair
from gateway_api.auth import Principal
from gateway_api.parsing import ChatRequest, Intake
from gateway_api.responses import cache_hit_headers
from gateway_api.schemas import ChatCompletionSchema
from gateway_api.services import Services
from shared import metrics
from shared.celery_app import QUEUES
from shared.errors import (
    GatewayUnavailable,
    QueueFull,
)
from shared.logs import request_id_var
from shared.routing import breaker_hint
from shared.state import fair
from shared.state.cache import Entry
from shared.state.job_record import FAILED, QUEUED, SUCCEEDED, Job, new_job_id
from shared.wire import openai_shape
from shared.wire.task_message import GROUP_TTL_MS, run_group_message

log = logging.getLogger(__name__)
_CHAT = ChatCompletionSchema()


QUEUE_FULL_RETRY_AFTER_S = 5.0


def queue_full(outcome: str, value: float, services: Services, now: float) -> QueueFull:
    q = services.settings.queue
    if outcome == "full_depth":
        message = (
            f"The queue holds {int(value)} jobs (queue.max_depth is {q.max_depth}); retry later."
        )
    else:
        message = (
            f"The oldest queued job has waited {now - value:.0f}s "
            f"(queue.max_age_s is {q.max_age_s:g}); retry later."
        )
    return QueueFull(message, retry_after=QUEUE_FULL_RETRY_AFTER_S)


def cached_job(
    services: Services,
    principal: Principal,
    intake: Intake,
    priority: str,
    deadline_s: float,
    metadata: dict[str, Any] | None,
    job_id: str,
) -> Job:
    """A job answered from the cache: recorded as already succeeded, never enqueued."""
    assert intake.hit is not None
    now = time.time()
    job = Job(
        id=job_id,
        owner=principal.key_id,
        status=SUCCEEDED,
        priority=priority,
        model=intake.chat.model,
        request=intake.chat.body,
        created_at=now,
        deadline_at=now + deadline_s,
        config_version=services.settings.version,
        started_at=now,
        finished_at=now,
        provider=intake.hit.provider,
        cache="hit",
        result=intake.hit.result,
        metadata=metadata or {},
        request_id=request_id_var.get(),
        options=intake.chat.ext,
    )
    services.stores.jobs.create(job)
    return job


def creator(
    services: Services,
    principal: Principal,
    got: Intake,
    priority: str,
    deadline_s: float,
    metadata: dict[str, Any] | None = None,
    notify: str = "",
    keep_s: int = 0,
) -> Callable[[str], Job]:
    """What makes the job for ``admit``: a finished job for a cache hit, else a queued one.
    ``notify``: this process's notice channel, when this request waits for the job; ``keep_s``:
    how long its full record is kept once it ends (a synchronous request's), 0: all along."""

    def create(job_id: str) -> Job:
        if got.hit is not None:
            return cached_job(services, principal, got, priority, deadline_s, metadata, job_id)
        return submit(
            services,
            principal,
            got.chat,
            priority,
            deadline_s,
            metadata,
            job_id,
            got.tokens,
            notify,
            keep_s,
        )

    return create


def cached_completion(entry: Entry) -> Response:
    """The sync answer to a cache hit (no job was made)."""
    return cache_hit_headers(jsonify(openai_shape.completion(entry.result)), entry)


def submit(
    services: Services,
    principal: Principal,
    chat: ChatRequest,
    priority: str,
    deadline_s: float,
    metadata: dict[str, Any] | None = None,
    job_id: str | None = None,
    tokens: int = 0,
    notify: str = "",
    keep_s: int = 0,
) -> Job:
    now = time.time()
    job = Job(
        id=job_id or new_job_id(),
        owner=principal.key_id,
        status=QUEUED,
        priority=priority,
        model=chat.model,
        request=chat.body,
        created_at=now,
        deadline_at=now + deadline_s,
        config_version=services.settings.version,
        metadata=metadata or {},
        request_id=request_id_var.get(),
        options=chat.ext,
        tokens_estimate=tokens,
        breaker_hint=breaker_hint(
            services.settings, services.keys, chat.model, chat.ext.get("preferred_provider")
        ),
        notify=notify,
        keep_s=keep_s,
    )
    # Backpressure (503 queue_full instead of piling up) is checked as the job is created.
    q = services.settings.queue
    queue = QUEUES[priority]
    # Group commit: the job joins its queue's group; a message goes out only when none is
    # waiting in the broker, so an idle gateway sends one per job at once and a loaded one
    # one per group (workers/group.py).
    publish = (queue, run_group_message(queue, job.id)) if services.inline_publish else None
    window = fair.room(services.settings, principal.key_id)
    hold = budget.hold_for(services, principal, chat)
    created = services.stores.jobs.create(
        job, q.max_depth, q.max_age_s, publish, GROUP_TTL_MS, window, hold
    )
    outcome = created.outcome
    if created.budget is not None and hold is not None:
        key_budget = budget.budget_of(services, principal.key_id)
        assert key_budget is not None
        metrics.RATE_LIMITED.labels("budget").inc()
        raise budget.refusal(key_budget, created.budget, hold)
    if outcome not in ("ok", "held"):
        raise queue_full(outcome, created.value, services, now)
    budget.note_left(created.left)
    # Held: the key's fair-share window is full; a worker releases the job as the key's
    # earlier ones begin (shared/state/fair.py).
    if publish is not None or outcome == "held":  # the message went in with the job, or waits
        metrics.JOBS_SUBMITTED.labels(priority).inc()
        return job
    try:
        services.publish(services.celery, job.id, priority)
    except Exception as exc:
        log.error("publish failed", extra={"job_id": job.id, "error": repr(exc)})
        err = GatewayUnavailable(
            "The job could not be queued (broker unreachable); it was not accepted."
        )
        # Redis may be failing too: marked failed as soon as it answers, well before the
        # pending sweep (queue.redeliver_after_s) could republish a job the client was refused.
        repair.soon(
            lambda: services.stores.jobs.terminate(job.id, FAILED, err),
            "marking an unpublished job failed",
            job.id,
        )
        raise err from exc
    metrics.JOBS_SUBMITTED.labels(priority).inc()
    return job

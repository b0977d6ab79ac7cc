"""Validate a chat body and turn it into a queued job: create the record, then publish.

The record is written before the task is published, so a worker never sees a task without a
job. If publishing fails the job is marked failed and the client gets 503: a 202 means the job
is in the broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flask import Response, jsonify, request
from marshmallow import ValidationError

from gateway_api import repair, request_limits
from gateway_api.auth import Principal
from gateway_api.limits import take
from gateway_api.schemas import ChatCompletionSchema, first_error
from gateway_api.services import Services
from shared import metrics, stats
from shared.cache import Entry, policy
from shared.celery_app import QUEUES, enqueue
from shared.errors import (
    Conflict,
    GatewayUnavailable,
    InvalidRequest,
    ModelNotFound,
    QueueFull,
    Unprocessable,
)
from shared.idempotency import MAX_KEY_LENGTH, body_digest
from shared.jobs import FAILED, QUEUED, SUCCEEDED, Job, new_job_id
from shared.logs import request_id_var
from shared.ratelimit import estimate_tokens
from shared.routing import breaker_hint
from shared.task_message import GROUP_TTL_MS, run_group_message

log = logging.getLogger(__name__)
_CHAT = ChatCompletionSchema()


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # forwarded to the provider (model resolved, no "gateway")
    model: str
    ext: dict[str, Any]  # the validated "gateway" extension


def json_body() -> Any:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json", param=None)
    return body


def parse_chat(services: Services, body: Any, param_prefix: str = "") -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", param=param_prefix or None)
    try:
        valid = _CHAT.load(body)
    except ValidationError as exc:
        param, message = first_error(exc.messages)
        full = f"{param_prefix}.{param}" if param_prefix else param
        raise InvalidRequest(f"{full}: {message}", param=full) from exc
    s = services.settings
    request_limits.check(valid, s.limits, param_prefix)
    model = valid.get("model") or s.default_model
    if not model:
        raise InvalidRequest("model: a model is required", param="model")
    if model not in s.models:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    forwarded = {k: v for k, v in body.items() if k != "gateway"}
    forwarded["model"] = model
    return ChatRequest(body=forwarded, model=model, ext=valid.get("gateway") or {})


def resolve_deadline(services: Services, asked: float | None) -> float:
    q = services.settings.queue
    if asked is None:
        return q.deadline_s
    if asked > q.max_deadline_s:
        raise InvalidRequest(
            f"deadline_s: must be at most {q.max_deadline_s:g}", param="deadline_s"
        )
    return asked


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


@dataclass(frozen=True)
class Intake:
    """A parsed request after the response-cache lookup."""

    chat: ChatRequest
    hit: Entry | None  # a fresh cached answer: no job needs to run
    tokens: int  # the tokens/min estimate a new job is charged


def intake(services: Services, principal: Principal, chat: ChatRequest) -> Intake:
    """Apply the cache policy (config, ``Cache-Control``, ``gateway.cache``) and look up."""
    pol = policy(
        services.settings.cache,
        chat.body,
        chat.ext.get("cache"),
        request.headers.get("Cache-Control"),
    )
    if not pol.store and chat.ext.get("cache") != "no-store":  # tell the worker
        chat = replace(chat, ext={**chat.ext, "cache": "no-store"})
    hit = None
    if pol.lookup:
        hit = services.cache.fresh(principal.key_id, chat.body, pol.max_age_s)
        metrics.CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()
        if hit:
            services.stats.add(stats.CACHE_HITS)
    return Intake(chat, hit, 0 if hit else estimate_tokens(chat.body))


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
    services.store.create(job)
    return job


def creator(
    services: Services,
    principal: Principal,
    got: Intake,
    priority: str,
    deadline_s: float,
    metadata: dict[str, Any] | None = None,
) -> Callable[[str], Job]:
    """What makes the job for ``admit``: a finished job for a cache hit, else a queued one."""

    def create(job_id: str) -> Job:
        if got.hit is not None:
            return cached_job(services, principal, got, priority, deadline_s, metadata, job_id)
        return submit(
            services, principal, got.chat, priority, deadline_s, metadata, job_id, got.tokens
        )

    return create


def cached_completion(entry: Entry) -> Response:
    """The sync answer to a cache hit (no job was made)."""
    resp = jsonify(entry.result)
    resp.headers["X-Gateway-Cache"] = "hit"
    if entry.provider:
        resp.headers["X-Gateway-Provider"] = entry.provider
    resp.headers["Age"] = str(int(entry.age_s))
    return resp


def submit(
    services: Services,
    principal: Principal,
    chat: ChatRequest,
    priority: str,
    deadline_s: float,
    metadata: dict[str, Any] | None = None,
    job_id: str | None = None,
    tokens: int = 0,
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
    )
    # Backpressure (503 queue_full instead of piling up) is checked as the job is created.
    q = services.settings.queue
    queue = QUEUES[priority]
    # Group commit: the job joins its queue's group; a message goes out only when none is
    # waiting in the broker, so an idle gateway sends one per job at once and a loaded one
    # one per group (workers/group.py).
    publish = (queue, run_group_message(queue, job.id)) if services.inline_publish else None
    outcome, value = services.store.create(job, q.max_depth, q.max_age_s, publish, GROUP_TTL_MS)
    if outcome != "ok":
        raise queue_full(outcome, value, services, now)
    if publish is not None:  # the task message went in with the job, in one step
        metrics.JOBS_SUBMITTED.labels(priority).inc()
        return job
    try:
        enqueue(services.celery, job.id, priority)
    except Exception as exc:
        log.error("publish failed", extra={"job_id": job.id, "error": repr(exc)})
        err = GatewayUnavailable(
            "The job could not be queued (broker unreachable); it was not accepted."
        )
        # Redis may be failing too: marked failed as soon as it answers, well before the
        # pending sweep (queue.redeliver_after_s) could republish a job the client was refused.
        repair.soon(
            lambda: services.store.terminate(job.id, FAILED, err),
            "marking an unpublished job failed",
            job.id,
        )
        raise err from exc
    metrics.JOBS_SUBMITTED.labels(priority).inc()
    return job


@dataclass(frozen=True)
class Admitted:
    job: Job
    replayed: bool  # an earlier request with the same Idempotency-Key created this job


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", param="Idempotency-Key"
        )
    return key


def admit(
    services: Services,
    principal: Principal,
    route: str,
    raw_body: Any,
    job_id: str,
    create: Callable[[str], Job],
) -> Admitted:
    """Create the job, or, for a repeated Idempotency-Key, find the job it already stands for."""
    key = idempotency_key()
    if key is None:
        return Admitted(create(job_id), False)
    claim = services.idempotency.claim(principal.key_id, key, body_digest(route, raw_body), job_id)
    if not claim.first:
        if not claim.same_body:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        existing = _await_record(services, claim.job_id)
        if existing is not None:
            return Admitted(existing, True)
        if claim.stale:
            # Claimed long ago by a request that never created its job (its API process died,
            # or Redis went away between the two): this request takes the key over.
            claim = services.idempotency.take_over(principal.key_id, key, claim, job_id)
        if not claim.first:
            err = Conflict(
                "A request with this Idempotency-Key is still being accepted; retry shortly.",
                code="idempotency_key_in_use",
            )
            err.should_retry = None
            raise err
    try:
        return Admitted(create(job_id), False)
    except Exception:  # nothing was accepted: the key must not stand for a job that is not
        repair.soon(
            lambda: services.idempotency.release(principal.key_id, key, job_id),
            "releasing an Idempotency-Key",
            job_id,
        )
        raise


def admit_limited(
    services: Services,
    principal: Principal,
    route: str,
    raw_body: Any,
    job_id: str,
    intake: Intake,
    create: Callable[[str], Job],
) -> Admitted:
    """``admit`` behind the key's limits: what was taken is given back when no new job came
    of the request (refused, or a replayed Idempotency-Key)."""
    taken = take(services, principal, job_id, intake.tokens, new_job=intake.hit is None)
    try:
        admitted = admit(services, principal, route, raw_body, job_id, create)
    except BaseException:
        taken.give_back()
        raise
    if admitted.replayed:
        taken.give_back()
    return admitted


def _await_record(services: Services, job_id: str, timeout_s: float = 2.0) -> Job | None:
    """The claiming request writes the record right after its claim; give it a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = services.store.get(job_id)
        if job is not None or time.monotonic() >= deadline:
            return job
        time.sleep(0.02)

"""``accept``: the one way a request becomes a job, for every door.

In order: the response cache is looked up (a fresh answer may end it here); the key's limits
are taken; an ``Idempotency-Key`` is claimed (a repeat gets its earlier job); the job is created
with its budget reservation, fair-share place and backpressure check in one step
(``create.lua``) and its task message published. Whatever fails after the limits were taken
gives them back, and the key, so a refused request leaves nothing behind.

The record and its task message are written in one step when the broker is the job store's
Redis (``create.lua``); with another broker the record is written first, so a worker never sees
a task without a job, and a failed publish marks the job failed and answers 503: a 202 means
the job is in the broker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from gateway_api import budget, idempotent, repair
from gateway_api.auth import Principal
from gateway_api.key_limits import take
from gateway_api.notes import Notes
from gateway_api.services import Services
from gateway_api.submission import Accepted, Respond, Submission
from shared import metrics
from shared.celery_app import QUEUES
from shared.chat_request import ChatRequest
from shared.errors import GatewayUnavailable, QueueFull
from shared.logs import request_id_var
from shared.routing import breaker_hint
from shared.state import fair, fleet_stats
from shared.state.cache import Entry, policy
from shared.state.idempotency import body_digest
from shared.state.job_record import FAILED, QUEUED, SUCCEEDED, Job
from shared.state.ratelimit import estimate_tokens
from shared.wire.task_message import GROUP_TTL_MS, run_group_message

log = logging.getLogger(__name__)

QUEUE_FULL_RETRY_AFTER_S = 5.0
# How long past the job's deadline a request answered on the spot keeps listening for it.
WAIT_GRACE_S = 2.0


def accept(
    services: Services,
    principal: Principal,
    sub: Submission,
    notes: Notes,
    job_id: str,
) -> Accepted:
    """The job ``sub`` asks for (``job_id`` when new), or the cache entry that answers it."""
    request, hit = look_up(services, principal, sub)
    if hit is not None and sub.respond.here and sub.idempotency_key is None:
        take(services, principal, job_id, 0, notes, new_job=False)  # a request; no job, no tokens
        return Accepted(None, hit=hit)
    tokens = 0 if hit else estimate_tokens(request.body)
    taken = take(services, principal, job_id, tokens, notes, new_job=hit is None)
    try:
        key = sub.idempotency_key
        if key is not None:
            digest = body_digest(sub.route, sub.body)
            ttl_s = claim_ttl_s(services, sub)
            earlier = idempotent.claim(services, principal.key_id, key, digest, job_id, ttl_s)
            if earlier is not None:
                taken.give_back()
                return Accepted(earlier, replayed=True)
        try:
            if hit is not None:
                job = _answered(services, principal, sub, request, hit, job_id)
            else:
                job = _queued(services, principal, sub, request, tokens, job_id, notes)
        except Exception as exc:  # (an interrupt mid-step may have created the job: key kept)
            if key is not None:
                idempotent.release(services, principal.key_id, key, job_id, exc)
            raise
    except BaseException:
        taken.give_back()
        raise
    return Accepted(job)


def look_up(
    services: Services, principal: Principal, sub: Submission
) -> tuple[ChatRequest, Entry | None]:
    """The cache policy (config, ``Cache-Control``, ``gateway.cache``) applied: the request as
    the worker gets it (told not to store when it must not) and a fresh cached answer, if any."""
    request = sub.request
    pol = policy(services.settings.cache, request.body, request.ext.get("cache"), sub.cache_control)
    if not pol.store and request.ext.get("cache") != "no-store":  # tell the worker
        request = replace(request, ext={**request.ext, "cache": "no-store"})
    if not pol.lookup:
        return request, None
    hit = services.stores.cache.fresh(principal.key_id, request.body, pol.max_age_s)
    metrics.CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()
    if hit:
        services.stores.stats.add(fleet_stats.CACHE_HITS)
    return request, hit


def keep_s(services: Services, sub: Submission) -> int:
    """How long a job's full record is kept once it ends: an answer given on the spot a short
    while (``queue.sync_result_ttl_s``, then a slim record); 0: all along."""
    return services.settings.queue.sync_result_ttl_s if sub.respond.here else 0


def claim_ttl_s(services: Services, sub: Submission) -> int | None:
    """How long an Idempotency-Key stands for its job: for an answer given on the spot, the
    longest the job may run and its full record no longer (None: as long as the record)."""
    if not sub.respond.here:
        return None
    return int(sub.deadline_s + WAIT_GRACE_S) + keep_s(services, sub)


def _job(
    services: Services, principal: Principal, sub: Submission, request: ChatRequest, job_id: str
) -> Job:
    now = time.time()
    return Job(
        id=job_id,
        owner=principal.key_id,
        status=QUEUED,
        priority=sub.priority,
        model=request.model,
        request=request.body,
        created_at=now,
        deadline_at=now + sub.deadline_s,
        config_version=services.settings.version,
        metadata=sub.metadata,
        request_id=request_id_var.get(),
        options=request.ext,
        kind=sub.kind,
        door=sub.door,
    )


def _answered(
    services: Services,
    principal: Principal,
    sub: Submission,
    request: ChatRequest,
    hit: Entry,
    job_id: str,
) -> Job:
    """A job answered from the cache: recorded as already succeeded, never enqueued."""
    job = _job(services, principal, sub, request, job_id)
    job = replace(
        job,
        status=SUCCEEDED,
        started_at=job.created_at,
        finished_at=job.created_at,
        provider=hit.provider,
        cache="hit",
        result=hit.result,
    )
    services.stores.jobs.create(job)
    return job


def _queued(
    services: Services,
    principal: Principal,
    sub: Submission,
    request: ChatRequest,
    tokens: int,
    job_id: str,
    notes: Notes,
) -> Job:
    """A queued job: created behind backpressure, the key's budget and fair share, then
    published (with the record, when the broker is this Redis)."""
    s = services.settings
    job = replace(
        _job(services, principal, sub, request, job_id),
        tokens_estimate=tokens,
        breaker_hint=breaker_hint(
            s, services.keys, request.model, request.ext.get("preferred_provider")
        ),
        # The notice channel of this process, when this request waits here for the job.
        notify=services.hub.direct_channel() if sub.respond is Respond.WAIT else "",
        keep_s=keep_s(services, sub),
    )
    queue = QUEUES[sub.priority]
    # Group commit: the job joins its queue's group; a message goes out only when none is
    # waiting in the broker, so an idle gateway sends one per job at once and a loaded one one
    # per group (workers/group.py).
    publish = (queue, run_group_message(queue, job.id)) if services.inline_publish else None
    hold = budget.hold_for(services, principal, request)
    q = s.queue
    created = services.stores.jobs.create(
        job,
        q.max_depth,
        q.max_age_s,
        publish,
        GROUP_TTL_MS,
        fair.room(s, principal.key_id),
        hold,
    )
    if created.budget is not None and hold is not None:
        key_budget = budget.budget_of(services, principal.key_id)
        assert key_budget is not None
        metrics.RATE_LIMITED.labels("budget").inc()
        raise budget.refusal(key_budget, created.budget, hold)
    if created.outcome not in ("ok", "held"):
        raise queue_full(services, created.outcome, created.value, job.created_at)
    if created.left >= 0:
        notes.budget_left = created.left
    # Held: the key's fair-share window is full; a worker releases the job as the key's earlier
    # ones begin (shared/state/fair.py). Either way nothing is left to publish.
    if publish is None and created.outcome != "held":
        _publish(services, job)
    metrics.JOBS_SUBMITTED.labels(sub.priority).inc()
    return job


def _publish(services: Services, job: Job) -> None:
    try:
        services.publish(services.celery, job.id, job.priority)
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


def queue_full(services: Services, outcome: str, value: float, now: float) -> QueueFull:
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

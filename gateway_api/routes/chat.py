"""POST /v1/chat/completions: OpenAI-compatible; enqueues at interactive priority and waits
(or, with ``stream: true``, relays the answer as Server-Sent Events as it arrives)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, request

from gateway_api.admission import admit_limited, idempotency_key
from gateway_api.auth import authenticate
from gateway_api.errors import error_response
from gateway_api.key_limits import take
from gateway_api.parsing import intake, json_body, parse_chat, resolve_deadline
from gateway_api.responses import accepted, completion, gateway_headers
from gateway_api.services import Services, current_services
from gateway_api.stream_relay import START, stream_hit, stream_response
from gateway_api.submit import cached_completion, creator
from shared.errors import GatewayTimeout
from shared.state.job_record import Job, new_job_id

bp = Blueprint("chat", __name__)
ROUTE = "/v1/chat/completions"

# How long past the job's deadline a waiter keeps listening for the worker's verdict.
WAIT_GRACE_S = 2.0


def read_outcome(services: Services, job_id: str) -> Job | None:
    """The finished job as its completion notice told it, else as Redis holds it."""
    return services.hub.outcome(job_id) or services.stores.jobs.get_outcome(job_id)


def wants_async() -> bool:
    prefer = request.headers.get("Prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    services = current_services()
    principal = authenticate(services.settings)
    raw = json_body()
    chat = parse_chat(services, raw)
    priority = chat.ext.get("priority", "interactive")
    deadline_s = resolve_deadline(services, chat.ext.get("deadline_s"))
    got = intake(services, principal, chat)
    job_id = new_job_id()
    streamed = bool(chat.body.get("stream"))
    if got.hit is not None and not wants_async() and idempotency_key() is None:
        take(services, principal, job_id, 0, new_job=False)  # a request, no job, no tokens
        return stream_hit(got.hit, chat.body) if streamed else cached_completion(got.hit)

    waits = not wants_async() and not streamed  # this request waits here for the notice
    notify = services.hub.direct_channel() if waits else ""
    if wants_async():
        create = creator(services, principal, got, priority, deadline_s)
        return accepted(admit_limited(services, principal, ROUTE, raw, job_id, got, create).job)
    # The client gets the answer here: the full record is kept queue.sync_result_ttl_s after
    # the job ends (then a slim one: workers/slimming.py), and its Idempotency-Key no longer.
    keep_s = services.settings.queue.sync_result_ttl_s
    create = creator(services, principal, got, priority, deadline_s, notify=notify, keep_s=keep_s)
    # The key outlives the longest the job may run, and the whole answer no longer than that.
    claim_s = int(deadline_s + WAIT_GRACE_S) + keep_s
    if streamed:
        job = admit_limited(services, principal, ROUTE, raw, job_id, got, create, claim_s).job
        return stream_response(services, job, START, job.deadline_at + WAIT_GRACE_S)
    with services.hub.expect(job_id) as waiter:  # before the publish: no notice is missed
        admitted = admit_limited(services, principal, ROUTE, raw, job_id, got, create, claim_s)
        job = admitted.job
        timeout = max(0.0, job.deadline_at - time.time()) + WAIT_GRACE_S
        if admitted.replayed:  # the same request again: the same job, the same answer
            jobs = services.stores.jobs
            final = services.hub.wait_then_read(
                job.id, timeout, jobs.poll, jobs.get_public, job.notify
            )
        else:
            final = waiter.wait(timeout, lambda: read_outcome(services, job_id), job_id)
    if final is None or not final.terminal:
        err = GatewayTimeout(
            "The job did not finish before its deadline; it may still finish: "
            f"poll /v1/jobs/{job.id}.",
            code="timeout",
        )
        return gateway_headers(error_response(err, job.id), final or job)
    return completion(final)

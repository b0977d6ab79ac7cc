"""The jobs API: submit, list, read (with long-poll), cancel."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, jsonify, request

from gateway_api.accept import WAIT_GRACE_S, accept
from gateway_api.auth import Principal
from gateway_api.parsing import load_body, resolve_deadline
from gateway_api.responses import accepted, gateway_headers, page
from gateway_api.routes import incoming
from gateway_api.schemas import JobCreateSchema
from gateway_api.services import Services, current_services
from gateway_api.stream_relay import START, stream_response, valid_event_id
from gateway_api.submission import Respond, Submission
from shared.chat_request import parse_chat
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.state.job_record import CANCELLED, Job, new_job_id

bp = Blueprint("jobs", __name__)
_CREATE = JobCreateSchema()
MAX_WAIT_S = 60.0
MAX_PAGE = 100


def _own_job(services: Services, principal: Principal, job_id: str) -> Job:
    """The caller's job as its job object shows it (no request)."""
    job = services.stores.jobs.get_public(job_id) if job_id.startswith("job_") else None
    if job is None or job.owner != principal.key_id:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found", param="id")
    return job


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"{name}: must be a number", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: must be between {low:g} and {high:g}", param=name)
    return value


@bp.post("/v1/jobs")
def create_job() -> Response:
    services = current_services()
    principal = incoming.client(services)
    body = incoming.json_body()
    valid = load_body(_CREATE, body)
    chat = parse_chat(services.settings, valid["request"], param_prefix="request")
    if valid["webhook"]:  # as "gateway": {"webhook": true} in the request asks
        chat = replace(chat, ext={**chat.ext, "webhook": True})
    sub = Submission(
        kind="chat",
        door="jobs",
        request=chat,
        route="/v1/jobs",
        body=body,
        priority=valid["priority"],
        deadline_s=resolve_deadline(
            services.settings, valid.get("deadline_s") or chat.ext.get("deadline_s")
        ),
        respond=Respond.ASYNC,
        metadata=valid["metadata"] or {},
        idempotency_key=incoming.idempotency_key(),
        cache_control=incoming.cache_control(),
    )
    job = accept(services, principal, sub, incoming.notes(), new_job_id()).job
    assert job is not None  # a job is always made for a 202
    return accepted(job)


@bp.get("/v1/jobs")
def list_jobs() -> Response:
    services = current_services()
    principal = incoming.client(services)
    limit = int(_number("limit", 20, 1, MAX_PAGE))
    jobs, has_more = services.stores.jobs.list_for_owner(
        principal.key_id, limit, request.args.get("after") or None
    )
    return page([j.to_public() for j in jobs], has_more)


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    services = current_services()
    principal = incoming.client(services)
    wait = _number("wait", 0, 0, MAX_WAIT_S)
    job = _own_job(services, principal, job_id)
    if wait > 0 and not job.terminal:
        jobs = services.stores.jobs
        # Polls read the status only; the job object is read once, when the wait is over.
        waited = services.hub.wait_then_read(job_id, wait, jobs.poll, jobs.get_public, job.notify)
        job = waited or job
    return gateway_headers(jsonify(job.to_public()), job)


@bp.delete("/v1/jobs/<job_id>")
def cancel_job(job_id: str) -> Response:
    services = current_services()
    principal = incoming.client(services)
    job = _own_job(services, principal, job_id)
    outcome, previous = services.stores.jobs.terminate(
        job_id, CANCELLED, Conflict("The job was cancelled.", code="cancelled")
    )
    if outcome == "missing":
        raise NotFound(f"No job {job_id!r}.", code="job_not_found", param="id")
    if outcome == "terminal" and previous != CANCELLED:
        err = Conflict(
            f"The job already ended {previous}; it cannot be cancelled.",
            code="job_already_finished",
        )
        raise err
    job = services.stores.jobs.get_public(job_id) or job
    resp = jsonify(job.to_public())
    resp.status_code = 202 if outcome == "ok" else 200
    return gateway_headers(resp, job)


@bp.get("/v1/jobs/<job_id>/stream")
def stream_job(job_id: str) -> Response:
    """(Re)attach to a job's stream from the start, or after ``Last-Event-ID``."""
    services = current_services()
    principal = incoming.client(services)
    # Every header and query value is parsed before anything is looked up.
    after = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or START
    if not valid_event_id(after):
        raise InvalidRequest(
            "Last-Event-ID: an event id this stream sent (like 1700000000000-0)",
            param="Last-Event-ID",
        )
    job = _own_job(services, principal, job_id)
    return stream_response(services, job, after, job.deadline_at + WAIT_GRACE_S)

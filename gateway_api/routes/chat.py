"""POST /v1/chat/completions, OpenAI-compatible: the request becomes a chat job at interactive
priority (``accept``), then the answer waits for it, relays its stream (``stream: true``), or
is the job object at once (``Prefer: respond-async``)."""

from __future__ import annotations

from flask import Blueprint, Response

from gateway_api.accept import WAIT_GRACE_S, accept
from gateway_api.errors import error_response
from gateway_api.parsing import resolve_deadline
from gateway_api.responses import accepted, cached_completion, completion, gateway_headers
from gateway_api.routes import incoming
from gateway_api.services import current_services
from gateway_api.stream_relay import START, stream_hit, stream_response
from gateway_api.submission import Respond, Submission
from gateway_api.sync_wait import accept_and_wait
from shared.chat_request import parse_chat
from shared.errors import GatewayTimeout
from shared.state.job_record import new_job_id

bp = Blueprint("chat", __name__)
ROUTE = "/v1/chat/completions"


@bp.post(ROUTE)
def chat_completions() -> Response:
    services = current_services()
    principal = incoming.client(services)
    body = incoming.json_body()
    chat = parse_chat(services.settings, body)
    if incoming.wants_async():
        respond = Respond.ASYNC
    else:
        respond = Respond.STREAM if chat.body.get("stream") else Respond.WAIT
    sub = Submission(
        kind="chat",
        door="chat",
        request=chat,
        route=ROUTE,
        body=body,
        priority=chat.ext.get("priority", "interactive"),
        deadline_s=resolve_deadline(services.settings, chat.ext.get("deadline_s")),
        respond=respond,
        idempotency_key=incoming.idempotency_key(),
        cache_control=incoming.cache_control(),
    )
    notes = incoming.notes()
    if respond is Respond.WAIT:
        got, final = accept_and_wait(services, principal, sub, notes)
        if got.hit is not None:
            return cached_completion(got.hit)
        assert got.job is not None
        if final is None or not final.terminal:
            err = GatewayTimeout(
                "The job did not finish before its deadline; it may still finish: "
                f"poll /v1/jobs/{got.job.id}.",
                code="timeout",
            )
            return gateway_headers(error_response(err, got.job.id), final or got.job)
        return completion(final)
    got = accept(services, principal, sub, notes, new_job_id())
    if got.hit is not None:
        return stream_hit(got.hit, chat.body)
    assert got.job is not None
    if respond is Respond.STREAM:
        return stream_response(services, got.job, START, got.job.deadline_at + WAIT_GRACE_S)
    return accepted(got.job)

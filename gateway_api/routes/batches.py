"""OpenAI's Batch API (``client.batches.*``) over the job queue, for any provider: create,
list, retrieve, cancel; scoped to the calling key (another key's batch is 404). The batch
runs in the workers (``workers/batches.py``); this is only its front door."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from gateway_api import budget
from gateway_api.parsing import load_body
from gateway_api.responses import page
from gateway_api.routes import incoming
from gateway_api.schemas import BatchCreateSchema
from gateway_api.services import current_services
from shared.batch.batch_store import (
    CANCELLED,
    CANCELLING,
    ENDPOINTS,
    IN_PROGRESS,
    VALIDATING,
    WINDOWS,
    Batch,
    TooManyActive,
)
from shared.errors import Conflict, InvalidRequest, NotFound, RateLimited

bp = Blueprint("batches", __name__)
_CREATE = BatchCreateSchema()
MAX_PAGE = 100


def _not_found(batch_id: str) -> NotFound:
    return NotFound(f"No such Batch object: {batch_id}", code="batch_not_found", param="id")


@bp.post("/v1/batches")
def create() -> Response:
    services = current_services()
    principal = incoming.client(services)
    valid = load_body(_CREATE, incoming.json_body())
    if valid["endpoint"] not in ENDPOINTS:
        raise InvalidRequest(
            f"endpoint: this gateway runs batches of {', '.join(ENDPOINTS)} only",
            code="unsupported_endpoint",
            param="endpoint",
        )
    file_id = valid["input_file_id"]
    stored = services.stores.files.get(principal.key_id, file_id)
    if stored is None:
        raise NotFound(
            f"No such File object: {file_id}", code="file_not_found", param="input_file_id"
        )
    if stored.purpose != "batch":
        raise InvalidRequest(
            f"input_file_id: the file's purpose is {stored.purpose!r}, not 'batch'",
            param="input_file_id",
        )
    budget.refuse_when_spent(services, principal.key_id)
    s = services.settings
    window = s.batches.window_s or WINDOWS[valid["completion_window"]]
    try:
        batch = services.stores.batches.create(
            principal.key_id,
            file_id,
            valid["endpoint"],
            valid["completion_window"],
            window,
            valid.get("metadata"),
            s.batches.max_active_per_key,
        )
    except TooManyActive as exc:
        raise _too_many(exc) from exc
    return jsonify(batch.to_public())


def _too_many(exc: TooManyActive) -> RateLimited:
    """429 ``too_many_active_batches``: the key's batches not yet ended are at
    ``batches.max_active_per_key``. Room comes back as one ends, not with time, so the client's
    own retries are told not to (``x-should-retry: false``)."""
    err = RateLimited(
        f"This API key has {exc.active} batches not yet ended, the most it may have "
        f"(batches.max_active_per_key is {exc.bound}). Create this batch once one of them "
        "has ended, or cancel one.",
        code="too_many_active_batches",
    )
    err.should_retry = False
    return err


def _own(batch_id: str) -> Batch:
    services = current_services()
    principal = incoming.client(services)
    batch = services.stores.batches.get(batch_id, principal.key_id)
    if batch is None:
        raise _not_found(batch_id)
    return batch


@bp.get("/v1/batches/<batch_id>")
def retrieve(batch_id: str) -> Response:
    return jsonify(_own(batch_id).to_public())


@bp.post("/v1/batches/<batch_id>/cancel")
def cancel(batch_id: str) -> Response:
    """Unstarted lines stop; finished ones stay in the output (the workers end the batch)."""
    services = current_services()
    batch = _own(batch_id)
    if batch.status in (CANCELLING, CANCELLED):
        return jsonify(batch.to_public())
    if not services.stores.batches.move(
        batch, (VALIDATING, IN_PROGRESS), CANCELLING, cancelling_at=int(time.time())
    ):
        fresh = services.stores.batches.get(batch.id) or batch
        if fresh.status in (CANCELLING, CANCELLED):
            return jsonify(fresh.to_public())
        raise Conflict(
            f"Cannot cancel a batch with status {fresh.status!r}.", code="batch_not_cancellable"
        )
    return jsonify((services.stores.batches.get(batch.id) or batch).to_public())


@bp.get("/v1/batches")
def list_batches() -> Response:
    services = current_services()
    principal = incoming.client(services)
    batches, more = services.stores.batches.page(
        principal.key_id, incoming.page_limit(20, MAX_PAGE), request.args.get("after")
    )
    return page([b.to_public() for b in batches], more)

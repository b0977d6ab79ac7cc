"""The calling key's webhook delivery log and replay (``shared/webhooks.py``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway_api.responses import page
from gateway_api.routes import incoming
from gateway_api.services import current_services
from shared.errors import InvalidRequest, NotFound
from shared.webhooks import FAILED, PENDING, SUCCEEDED, Delivery

bp = Blueprint("webhooks", __name__)
MAX_PAGE = 100
STATUSES = (PENDING, SUCCEEDED, FAILED)


def _own(delivery_id: str) -> Delivery:
    services = current_services()
    principal = incoming.client(services)
    d = services.stores.webhooks.get(principal.key_id, delivery_id)
    if d is None:
        raise NotFound(
            f"No such webhook delivery: {delivery_id}", code="delivery_not_found", param="id"
        )
    return d


@bp.get("/v1/webhook_deliveries")
def list_deliveries() -> Response:
    services = current_services()
    principal = incoming.client(services)
    limit = incoming.page_limit(20, MAX_PAGE)
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(STATUSES)}", param="status")
    got, more, resume = services.stores.webhooks.page(
        principal.key_id, limit, request.args.get("after"), status
    )
    return page([d.to_public() for d in got], more, resume)


@bp.get("/v1/webhook_deliveries/<delivery_id>")
def retrieve(delivery_id: str) -> Response:
    return jsonify(_own(delivery_id).to_public())


@bp.post("/v1/webhook_deliveries/<delivery_id>/replay")
def replay(delivery_id: str) -> Response:
    """Deliver the event again now (same event id: receivers may dedupe on webhook-id)."""
    d = _own(delivery_id)
    services = current_services()
    services.stores.webhooks.replay(d.id)
    return jsonify(_own(delivery_id).to_public())

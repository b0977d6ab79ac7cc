"""GET /v1/models in the OpenAI list format, from config."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from gateway_api.routes import incoming
from gateway_api.services import current_services

bp = Blueprint("models", __name__)


@bp.get("/v1/models")
def list_models() -> Response:
    services = current_services()
    incoming.client(services)
    created = int(services.started_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "llm-gateway"}
        for name in services.settings.models
    ]
    return jsonify({"object": "list", "data": data})

"""GET /metrics: Prometheus text format (optionally behind ``metrics.token``)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from gateway_api.services import current_services
from shared import metrics
from shared.errors import AuthenticationFailed

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    token = (current_services().settings.raw.get("metrics") or {}).get("token")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), str(token).encode()):
            raise AuthenticationFailed("A metrics token is required.")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)

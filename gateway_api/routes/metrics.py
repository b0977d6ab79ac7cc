"""GET /metrics: Prometheus text format (optionally behind ``metrics.token``)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from flask import Blueprint, Response, request
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway_api.routes.health import queue_depths
from gateway_api.services import Services, current_services
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
    body, content_type = metrics.render(QueueDepths(current_services()))
    return Response(body, content_type=content_type)


class QueueDepths(Collector):
    """``gateway_queue_depth{priority}``: messages waiting in each priority's queue, read from
    the broker at scrape time (omitted when the broker is not this Redis)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "gateway_queue_depth", "Jobs waiting in each priority's queue", labels=["priority"]
        )
        for priority, depth in queue_depths(self.services).items():
            if depth is not None:
                family.add_metric([priority], depth)
        yield family

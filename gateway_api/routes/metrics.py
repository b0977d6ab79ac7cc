"""GET /metrics: Prometheus text format (optionally behind ``metrics.token``)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from flask import Blueprint, Response, request
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway_api.fleet_status import breaker_states, queue_depths, redis_check
from gateway_api.services import Services, current_services
from shared import metrics
from shared.errors import AuthenticationFailed
from shared.redis_checks import RedisCheck
from shared.state.breaker import CLOSED, HALF_OPEN, OPEN

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    token = current_services().settings.metrics.token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), str(token).encode()):
            raise AuthenticationFailed("A metrics token is required.")
    body, content_type = metrics.render(ScrapedState(current_services()))
    return Response(body, content_type=content_type)


class ScrapedState(Collector):
    """State read from Redis at scrape time, the same from every API process:

    - ``gateway_queue_depth{priority}``: jobs waiting in each priority's queue (omitted when
      the broker is not this Redis);
    - ``gateway_breaker_state{provider, model, state}``: 1 for each breaker's current state
      (``closed``, ``open``, ``half_open``) and 0 for the others; ``model`` is empty unless the
      provider has ``breaker_per_model``;
    - ``gateway_redis_used_memory_bytes``, ``gateway_redis_memory_limit_bytes`` (``maxmemory``,
      else the machine's memory) and ``gateway_redis_memory_growth_bytes_per_second`` (once
      this process has readings over five minutes): under ``noeviction`` a full Redis stops
      enqueue for the whole fleet, so alert on the first reaching the second.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "gateway_queue_depth", "Jobs waiting in each priority's queue", labels=["priority"]
        )
        for priority, n in queue_depths(self.services).items():
            if n is not None:
                depth.add_metric([priority], n)
        yield depth
        breaker = GaugeMetricFamily(
            "gateway_breaker_state",
            "Circuit breaker state per provider (and model): 1 for the current state",
            labels=["provider", "model", "state"],
        )
        for provider, state in breaker_states(self.services).items():
            per_model = state if isinstance(state, dict) else {"": state}
            for model, current in per_model.items():
                for each in (CLOSED, OPEN, HALF_OPEN):
                    breaker.add_metric([provider, model, each], 1.0 if current == each else 0.0)
        yield breaker
        yield from _redis_memory(redis_check(self.services))


def _redis_memory(check: RedisCheck) -> Iterable[Metric]:
    f = check.facts
    if f is None:
        return
    yield GaugeMetricFamily(
        "gateway_redis_used_memory_bytes", "Redis used_memory (INFO)", value=f.used_memory
    )
    yield GaugeMetricFamily(
        "gateway_redis_memory_limit_bytes",
        "What Redis may grow to: maxmemory, else the machine's memory (0: unknown)",
        value=f.memory_limit,
    )
    if check.growth is not None:
        yield GaugeMetricFamily(
            "gateway_redis_memory_growth_bytes_per_second",
            "How fast Redis used_memory grew over the last readings (up to an hour)",
            value=check.growth,
        )

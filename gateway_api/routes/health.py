"""Liveness, readiness and the status page (docs/architecture.md "Health and status").

``/health/ready`` answers 503 only when this process cannot accept work (Redis or the broker
unreachable). No worker heartbeat, or no provider able to serve, keeps it 200 with
``"degraded": true`` and the reasons: a load balancer must keep the API in rotation so each
request gets its own, precise 503. A Redis that could lose accepted jobs (``shared.redis_checks``)
is such a reason too. Readiness lists no workers: it counts recent beats (one command).

``/v1/health`` shows any key the fleet's state; only an admin key also sees each worker's
``host:pid`` and each provider's last error text (an upstream's words, about the operator's
account, are not every tenant's business).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from gateway_api import fleet_status
from gateway_api.routes import incoming
from gateway_api.services import current_services

bp = Blueprint("health", __name__)


@bp.get("/health/live")
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    services = current_services()
    reasons: list[str] = []
    ok = True
    for check in (fleet_status.redis_ok, fleet_status.broker_ok):
        passed, why = check(services)
        if not passed:
            ok = False
            reasons.append(why or "check failed")
    degraded: list[str] = []
    if ok:
        if not fleet_status.worker_count(services):
            degraded.append("no live worker heartbeat")
        if not fleet_status.serving(fleet_status.providers(services, [])):
            degraded.append("no healthy provider (every provider unhealthy or its circuit open)")
        degraded += fleet_status.redis_check(services).risks
    body = {
        "status": "ready" if ok else "unavailable",
        # The fleet can take work: this process is ready and a worker heartbeats.
        "fleet_ready": ok and "no live worker heartbeat" not in degraded,
        "degraded": bool(degraded),
        "reasons": reasons + degraded,
        "config_version": services.settings.version,
    }
    resp = jsonify(body)
    resp.status_code = 200 if ok else 503
    return resp


@bp.get("/v1/health")
def status() -> Response:
    services = current_services()
    _, admin = incoming.client_or_admin(services)
    redis_ok, why = fleet_status.redis_ok(services)
    workers = fleet_status.workers(services) if redis_ok else []
    providers = fleet_status.providers(services, workers) if redis_ok else {}
    serving = fleet_status.serving(providers)
    check = fleet_status.redis_check(services) if redis_ok else None
    warnings = check.warnings if check else []
    if not redis_ok:
        overall = "unhealthy"
    elif workers and serving:
        overall = "healthy"
    else:
        overall = "degraded"
    body = {
        "status": overall,
        "uptime_s": round(time.time() - services.started_at, 1),
        "config_version": services.settings.version,
        "gateway": {
            "redis": "ok" if redis_ok else why,
            "waiters": services.hub.waiting,
            "warnings": warnings,
            "redis_memory": fleet_status.redis_memory(check) if check else None,
        },
        "workers": {
            "count": len(workers),
            "processes": workers if admin else [_without(w, "id") for w in workers],
        },
        "queues": fleet_status.queue_depths(services) if redis_ok else {},
        "providers": (
            providers if admin else {n: _without(p, "last_error") for n, p in providers.items()}
        ),
        "metrics": fleet_status.metric_summary(services.stores.stats.read()) if redis_ok else {},
    }
    return jsonify(body)


def _without(entry: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != name}

"""Liveness, readiness and the status page (DESIGN.md "HTTP API").

``/health/ready`` answers 503 only when this process cannot accept work (Redis or the broker
unreachable). No worker heartbeat, or no provider able to serve, keeps it 200 with
``"degraded": true`` and the reasons: a load balancer must keep the API in rotation so each
request gets its own, precise 503.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify

from gateway_api import fleet_status
from gateway_api.auth import authenticate
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
        workers = fleet_status.workers(services)
        if not workers:
            degraded.append("no live worker heartbeat")
        if not fleet_status.serving(fleet_status.providers(services, workers)):
            degraded.append("no healthy provider (every provider unhealthy or its circuit open)")
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
    authenticate(services.settings)
    redis_ok, why = fleet_status.redis_ok(services)
    workers = fleet_status.workers(services) if redis_ok else []
    providers = fleet_status.providers(services, workers) if redis_ok else {}
    serving = fleet_status.serving(providers)
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
        "gateway": {"redis": "ok" if redis_ok else why, "waiters": services.hub.waiting},
        "workers": {"count": len(workers), "processes": workers},
        "queues": fleet_status.queue_depths(services) if redis_ok else {},
        "providers": providers,
        "metrics": fleet_status.metric_summary(services.stores.stats.read()) if redis_ok else {},
    }
    return jsonify(body)

"""Liveness, readiness and the status page (DESIGN.md "HTTP API")."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from gateway_api.auth import authenticate
from gateway_api.services import Services, current_services
from shared.celery_app import QUEUES

bp = Blueprint("health", __name__)


def _redis_ok(services: Services) -> tuple[bool, str | None]:
    try:
        services.redis.ping()
        return True, None
    except Exception as exc:
        return False, f"redis unreachable: {type(exc).__name__}"


def _broker_ok(services: Services) -> tuple[bool, str | None]:
    s = services.settings
    if s.broker_url == s.redis_url:
        return _redis_ok(services)
    try:
        with services.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, None
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}"


def _workers(services: Services) -> list[dict[str, Any]]:
    out = []
    prefix = services.keys.worker_heartbeat("")
    for key in services.redis.scan_iter(match=services.keys.worker_heartbeat_pattern, count=200):
        seen = services.redis.get(key)
        if seen:
            out.append({"id": str(key)[len(prefix) :], "last_seen": float(seen)})
    return out


def _queue_depths(services: Services) -> dict[str, int | None]:
    s = services.settings
    if s.broker_url != s.redis_url:
        return {p: None for p in QUEUES}
    pipe = services.redis.pipeline(transaction=False)
    for queue in QUEUES.values():
        pipe.llen(queue)
    return dict(zip(QUEUES, pipe.execute(), strict=True))


@bp.get("/health/live")
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    services = current_services()
    reasons: list[str] = []
    ok = True
    for check in (_redis_ok, _broker_ok):
        passed, why = check(services)
        if not passed:
            ok = False
            reasons.append(why or "check failed")
    degraded: list[str] = []
    if ok and not _workers(services):
        degraded.append("no live worker heartbeat")
    body = {
        "status": "ready" if ok else "unavailable",
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
    redis_ok, why = _redis_ok(services)
    workers = _workers(services) if redis_ok else []
    body = {
        "status": "healthy" if redis_ok and workers else ("degraded" if redis_ok else "unhealthy"),
        "uptime_s": round(time.time() - services.started_at, 1),
        "config_version": services.settings.version,
        "gateway": {"redis": "ok" if redis_ok else why, "waiters": services.hub.waiting},
        "workers": {"count": len(workers), "processes": workers},
        "queues": _queue_depths(services) if redis_ok else {},
        "providers": {
            name: {
                "type": p.type,
                "base_url": p.base_url,
                "max_connections": p.max_connections,
            }
            for name, p in services.settings.providers.items()
        },
    }
    return jsonify(body)

"""``/dashboard``: a live status page for operators (HTML, no CDN, works offline) and the JSON
it polls. Who may look: an admin key as ``Authorization: Bearer`` like every admin route; a
browser login (an admin key posted once to ``/dashboard/login``, then a session cookie whose
hash is kept in Redis, so any API process honours it, for as long as that admin key is
configured); or anyone on loopback while the gateway has no keys at all (no client keys, no
admin keys). Behind a reverse proxy on the same host every peer is loopback: configure an
admin key and the page asks for it."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from importlib import resources

from flask import Blueprint, Response, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from gateway_api import dashboard_data
from gateway_api.auth import match_key
from gateway_api.routes import incoming
from gateway_api.services import Services, current_services
from shared.errors import AuthenticationFailed, GatewayError, NotFound

bp = Blueprint("dashboard", __name__)
COOKIE = "gw_dashboard"
SESSION_S = 12 * 3600


def _page(name: str) -> str:
    return resources.files("gateway_api").joinpath(f"static/{name}").read_text()


def _loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _session_key(services: Services, token: str) -> str:
    return services.keys.dashboard_session(hashlib.sha256(token.encode()).hexdigest())


def _session_holds(services: Services, token: str) -> bool:
    """Is the admin key this session was opened with still configured (same id, same key)?
    Revoking or replacing a key ends its sessions at once, on every API process."""
    key = _session_key(services, token)
    raw = services.redis.get(key)
    if not raw:
        return False
    try:
        held = json.loads(str(raw))
    except ValueError:
        held = None
    if isinstance(held, dict) and any(
        k.id == held.get("id") and k.key_sha256 == held.get("key_sha256")
        for k in services.settings.auth.admin_keys
    ):
        return True
    services.redis.delete(key)
    return False


def allowed(services: Services) -> bool:
    """May this request see the dashboard?"""
    s = services.settings
    if not s.auth.keys and not s.auth.admin_keys and _loopback():
        return True
    token = request.cookies.get(COOKIE)
    if token and _session_holds(services, token):
        return True
    if request.headers.get("Authorization"):
        incoming.admin(services)  # raises 401/403 on a wrong key
        return True
    return False


@bp.get("/dashboard")
def page() -> Response:
    services = current_services()
    try:
        ok = allowed(services)
    except GatewayError:
        ok = False
    resp = Response(_page("dashboard.html" if ok else "dashboard_login.html"), mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"
    )
    return resp


@bp.get("/dashboard/data")
def data() -> Response:
    services = current_services()
    if not allowed(services):
        raise AuthenticationFailed(
            "Sign in at /dashboard or send 'Authorization: Bearer <admin key>'.",
            code="missing_api_key",
        )
    resp = jsonify(dashboard_data.snapshot(services))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/dashboard/jobs/<job_id>")
def job(job_id: str) -> Response:
    """A job as an operator sees it (any key's; no request body)."""
    services = current_services()
    if not allowed(services):
        raise AuthenticationFailed("Sign in at /dashboard first.", code="missing_api_key")
    found = services.stores.jobs.get_public(job_id) if job_id.startswith("job_") else None
    if found is None:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found", param="id")
    return jsonify({**found.to_public(), "owner": found.owner})


@bp.post("/dashboard/login")
def login() -> BaseResponse:
    services = current_services()
    key = (request.form.get("key") or "").strip()
    admin = match_key(key, services.settings.auth.admin_keys) if key else None
    if admin is None:
        return Response(
            _page("dashboard_login.html").replace("<!--error-->", "That is not an admin key."),
            status=401,
            mimetype="text/html",
        )
    token = secrets.token_urlsafe(32)
    session = json.dumps({"id": admin.id, "key_sha256": admin.key_sha256})
    services.redis.set(_session_key(services, token), session, ex=SESSION_S)
    out = redirect("/dashboard", code=303)
    out.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_S,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/dashboard",
    )
    return out


@bp.post("/dashboard/logout")
def logout() -> BaseResponse:
    services = current_services()
    token = request.cookies.get(COOKIE)
    if token:
        services.redis.delete(_session_key(services, token))
    out = redirect("/dashboard", code=303)
    out.delete_cookie(COOKIE, path="/dashboard")
    return out

"""``/admin/config``: the merged config (redacted, with sources), changes to the Redis layer
as JSON merge patches (RFC 7396), its versions, and rollback. Admin keys only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway_api.routes import incoming
from gateway_api.services import Services, current_services
from shared.config.redact import describe, redact
from shared.config.store import merge_patch
from shared.errors import InvalidRequest, NotFound

bp = Blueprint("admin", __name__)


def _admin() -> tuple[Services, str]:
    services = current_services()
    principal = incoming.admin(services)
    return services, f"admin:{principal.key_id}"


def _json_object() -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def _write(services: Services, change: Any, actor: str, note: str) -> Response:
    # A ConfigError (422 invalid_config) or VersionConflict (409 config_conflict) is the
    # client's answer as it is.
    version = services.sources.write(change, actor, note)
    loaded = services.reload()
    return jsonify({**describe(loaded), "written_version": version})


@bp.get("/admin/config")
def show() -> Response:
    services, _ = _admin()
    body = describe(services.loaded)
    # Why the last refresh was refused (this process serves on with the config above).
    body["refused"] = services.watcher.last_error if services.watcher else None
    return jsonify(body)


@bp.patch("/admin/config")
def patch() -> Response:
    services, actor = _admin()
    body = _json_object()
    return _write(services, lambda layer: merge_patch(layer, body), actor, "patch")


@bp.get("/admin/config/versions")
def versions() -> Response:
    services, _ = _admin()
    store = services.sources.store()
    current = store.current_number()
    data = [{**v.describe(current), "layer": redact(v.layer)} for v in store.versions()]
    return jsonify({"object": "list", "current": current, "data": data})


@bp.post("/admin/config/rollback")
def rollback() -> Response:
    services, actor = _admin()
    target = _json_object().get("version")
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise InvalidRequest(
            "version: a version number from GET /admin/config/versions (0: no Redis layer)",
            param="version",
        )
    if target == 0:
        layer: dict[str, Any] = {}
    else:
        found = services.sources.store().get(target)
        if found is None:
            raise NotFound(f"No config version {target} is kept.", param="version")
        layer = found.layer
    return _write(services, lambda _: dict(layer), actor, f"rollback to {target}")

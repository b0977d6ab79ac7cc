"""The Flask app factory."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from flask_cors import CORS

from gateway_api import budget, key_limits
from gateway_api.errors import register_error_handlers
from gateway_api.notes import Notes
from gateway_api.responses import COST_HEADER
from gateway_api.routes import (
    admin,
    batches,
    chat,
    dashboard,
    files,
    health,
    jobs,
    models,
    openapi,
    usage,
    webhooks,
)
from gateway_api.routes import metrics as metrics_routes
from gateway_api.services import Services
from shared import metrics
from shared.config.loader import LoadedConfig, build, load_config
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from shared.logs import request_id_var

log = logging.getLogger(__name__)
# Set by `llm-gateway api` once its master has warned that auth is off.
OPEN_WARNED_ENV = "GATEWAY_OPEN_WARNED"
# "1" when ``llm-gateway api`` binds a loopback address, the only bind where it may serve
# without client keys unless auth.open (gateway_cli/run_api.py).
LOOPBACK_BIND_ENV = "GATEWAY_LOOPBACK_BIND"
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Prefer",
    "Cache-Control",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Gateway-Job-Id",
    "X-Gateway-Provider",
    "X-Gateway-Cache",
    "X-Gateway-Degraded",
    "X-Gateway-Degraded-Params",
    COST_HEADER,
    budget.REMAINING_HEADER,
    "Location",
    "Retry-After",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _as_loaded(config: LoadedConfig | dict[str, Any] | None) -> LoadedConfig:
    if config is None:
        return load_config()
    if isinstance(config, LoadedConfig):
        return config
    return build(config)


def create_app(
    config: LoadedConfig | dict[str, Any] | None = None,
    services: Services | None = None,
    live: bool = False,
) -> Flask:
    """``config``: a LoadedConfig, a full config document, or None (file + environment).
    ``live``: every layer (file, environment, Redis, HTTP source), refreshed while serving."""
    if live:
        sources = ConfigSources()
        services = Services.build(sources.load_at_start(), sources=sources)
        # A gunicorn worker (re)started later loads the config of that moment: it may serve
        # without keys only where the start-up guard would have allowed it.
        loopback = os.environ.get(LOOPBACK_BIND_ENV) == "1"
        services.open_at_start = services.open_at_start and loopback
        services.watcher = ConfigWatcher(sources, services.loaded, services.apply)
    loaded = services.loaded if services else _as_loaded(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = loaded.settings.limits.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = services or Services.build(loaded)
    app.extensions["gateway"] = services

    def _retune(new: LoadedConfig) -> None:
        app.config["MAX_CONTENT_LENGTH"] = new.settings.limits.max_body_bytes

    services.listeners.append(_retune)
    if services.watcher is not None:
        services.watcher.start()
    if not loaded.settings.auth.keys and not os.environ.get(OPEN_WARNED_ENV):
        log.warning(
            "AUTH DISABLED: no API keys are configured; every request is accepted. "
            "Configure auth.keys before exposing this gateway."
        )

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.notes = Notes()  # filled in by the route (gateway_api/routes/incoming.py)
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
        request_id_var.set(g.request_id)

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
        notes: Notes = g.get("notes") or Notes()
        key_limits.add_headers(resp, app.extensions["gateway"], notes)
        budget.add_headers(resp, app.extensions["gateway"], notes)
        route = request.url_rule.rule if request.url_rule else "unmatched"
        door, status = metrics.door_of(request.blueprint), str(resp.status_code)
        metrics.HTTP_REQUESTS.labels(route, request.method, status, door).inc()
        if "started" in g:
            metrics.HTTP_LATENCY.labels(route, door).observe(time.perf_counter() - g.started)
        if resp.status_code >= 400 and door != metrics.OTHER_DOOR:
            # An error answer is one small JSON envelope; a streamed body is never read here.
            body = None if resp.is_streamed else resp.get_json(silent=True)
            metrics.HTTP_ERRORS.labels(door, status, metrics.error_type(body)).inc()
            # Fleet-wide (/v1/health, the dashboard) only for a known caller, so an anonymous
            # flood costs Redis nothing, and not while Redis itself is the reason (503).
            if notes.principal is not None and resp.status_code != 503:
                app.extensions["gateway"].stores.stats.door_error(door)
        return resp

    origins = list(loaded.settings.cors.allowed_origins)
    if origins:  # off unless configured
        CORS(
            app,
            resources={r"/v1/*": {"origins": origins}},
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    register_error_handlers(app)
    blueprints = (
        chat,
        jobs,
        files,
        batches,
        webhooks,
        usage,
        models,
        health,
        metrics_routes,
        openapi,
    )
    for module in (*blueprints, admin, dashboard):
        app.register_blueprint(module.bp)
    return app

"""Every error leaves as the OpenAI envelope; nothing leaves as a bare 500 page."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from shared.errors import BACKEND_DOWN, GatewayError, GatewayUnavailable, for_http_status

log = logging.getLogger(__name__)


def error_response(err: GatewayError, job_id: str | None = None) -> Response:
    job_id = job_id or err.job_id
    resp = jsonify(err.envelope(job_id))
    resp.status_code = err.status
    if err.should_retry is False:
        resp.headers["x-should-retry"] = "false"
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, int(err.retry_after + 0.999)))
    if job_id:
        resp.headers["X-Gateway-Job-Id"] = job_id
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def _gateway(err: GatewayError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        cls = for_http_status(status)
        err = cls(exc.description or exc.name)
        if err.status != status:  # a status the tree has no class of keeps its own number
            err.status, err.code = status, "http_error"
        return error_response(err)

    for down in BACKEND_DOWN:

        @app.errorhandler(down)
        def _backend_down(exc: Exception) -> Response:
            log.warning("backend unreachable: %s", type(exc).__name__)
            return error_response(GatewayUnavailable())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        err = GatewayError("The gateway hit an internal error.", code="internal_error")
        err.should_retry = None
        return error_response(err)

"""What the routes read from the HTTP request: the caller, the JSON body and the headers that
shape a submission. Only the routes (and the app's hooks) touch Flask's request globals; the
steps behind them are handed what was read."""

from __future__ import annotations

from typing import Any

from flask import g, request

from gateway_api import auth
from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from shared.errors import InvalidRequest
from shared.state.idempotency import MAX_KEY_LENGTH


def notes() -> Notes:
    """This request's notes for its answer's headers (made by the app as the request begins)."""
    made: Notes | None = g.get("notes")
    if made is None:
        made = g.notes = Notes()
    return made


def client(services: Services) -> Principal:
    """The caller's client key (401 without a valid one)."""
    header = request.headers.get("Authorization")
    principal = auth.authenticate(services.settings, header, services.open_at_start)
    notes().principal = principal
    return principal


def admin(services: Services) -> Principal:
    """The caller's admin key (401, or 403 for a client key)."""
    principal = auth.authenticate_admin(services.settings, request.headers.get("Authorization"))
    notes().principal = principal
    return principal


def client_or_admin(services: Services) -> tuple[Principal, bool]:
    """The caller, and whether its key is an admin key."""
    header = request.headers.get("Authorization")
    principal, is_admin = auth.authenticate_client_or_admin(
        services.settings, header, services.open_at_start
    )
    notes().principal = principal
    return principal, is_admin


def json_body() -> Any:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json", param=None)
    return body


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", param="Idempotency-Key"
        )
    return key


def wants_async() -> bool:
    """``Prefer: respond-async``: answer 202 with the job instead of waiting for it."""
    prefer = request.headers.get("Prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


def cache_control() -> str | None:
    return request.headers.get("Cache-Control")


def page_limit(default: int, most: int) -> int:
    """The ``limit`` query parameter of a list route: 1 to ``most``, else 400."""
    raw = request.args.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= most:
        raise InvalidRequest(f"limit: must be an integer from 1 to {most}", param="limit")
    return int(raw)

"""API keys: Bearer tokens checked against ``auth.keys[].key_sha256`` in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import g, request

from gateway_api.services import current_services
from shared.config.settings import ApiKey, Settings
from shared.errors import AuthenticationFailed, PermissionDenied

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    key_id: str
    key: ApiKey | None


def key_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def match_key(token: str, keys: tuple[ApiKey, ...]) -> ApiKey | None:
    """Compare against every key (no early exit), each with ``hmac.compare_digest``."""
    digest = key_sha256(token)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(digest, key.key_sha256):
            found = key
    return found


def _required_bearer(what: str) -> str:
    token = _bearer()
    if token is None:
        raise AuthenticationFailed(
            f"Missing API key: send 'Authorization: Bearer <{what}>'.", code="missing_api_key"
        )
    return token


def authenticate(settings: Settings) -> Principal:
    if not settings.auth.keys:
        # Open only as the operator set it up: auth.open, or a process that started without
        # keys on loopback. Every live change that would drop the last key is refused; were
        # one to get through anyway, requests would be refused here, not let in.
        if not (settings.auth.open or current_services().open_at_start):
            raise AuthenticationFailed(
                "No client keys are configured: configure auth.keys (or auth.open: true).",
                code="no_api_keys",
            )
        principal = g.principal = Principal(ANONYMOUS, None)
        return principal
    token = _required_bearer("key")
    key = match_key(token, settings.auth.keys)
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    principal = g.principal = Principal(key.id, key)
    return principal


def authenticate_client_or_admin(settings: Settings) -> tuple[Principal, bool]:
    """A route any key may call, that shows an admin key more (``/v1/health``): the caller, and
    whether its key is an admin key."""
    token = _bearer()
    admin = match_key(token, settings.auth.admin_keys) if token else None
    if admin is not None:
        principal = g.principal = Principal(admin.id, admin)
        return principal, True
    return authenticate(settings), False


def authenticate_admin(settings: Settings) -> Principal:
    """``/admin/*``: an admin key (``auth.admin_keys``); a client key gets 403. With no admin
    keys configured the admin API is closed to everyone."""
    if not settings.auth.admin_keys:
        raise PermissionDenied(
            "The admin API is disabled: configure auth.admin_keys.", code="admin_disabled"
        )
    token = _required_bearer("admin key")
    admin = match_key(token, settings.auth.admin_keys)
    if admin is None:
        if match_key(token, settings.auth.keys) is not None:
            raise PermissionDenied("This API key is not an admin key.")
        raise AuthenticationFailed("Incorrect API key provided.")
    principal = g.principal = Principal(admin.id, admin)
    return principal

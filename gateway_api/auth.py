"""API keys: Bearer tokens checked against ``auth.keys[].key_sha256`` in constant time.

The routes hand in the ``Authorization`` header (``gateway_api/routes/incoming.py``); nothing
here reads the HTTP request."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from shared.config.settings import ApiKey, Settings
from shared.errors import AuthenticationFailed, PermissionDenied

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    key_id: str
    key: ApiKey | None


def key_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = (header or "").partition(" ")
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


def _required_bearer(header: str | None, what: str) -> str:
    token = bearer(header)
    if token is None:
        raise AuthenticationFailed(
            f"Missing API key: send 'Authorization: Bearer <{what}>'.", code="missing_api_key"
        )
    return token


def authenticate(settings: Settings, header: str | None, open_at_start: bool = False) -> Principal:
    """The client key of ``header`` (``Authorization``), or 401. ``open_at_start``: this
    process started without keys where that is allowed (``Services.open_at_start``)."""
    if not settings.auth.keys:
        # Open only as the operator set it up: auth.open, or a process that started without
        # keys on loopback. Every live change that would drop the last key is refused; were
        # one to get through anyway, requests would be refused here, not let in.
        if not (settings.auth.open or open_at_start):
            raise AuthenticationFailed(
                "No client keys are configured: configure auth.keys (or auth.open: true).",
                code="no_api_keys",
            )
        return Principal(ANONYMOUS, None)
    token = _required_bearer(header, "key")
    key = match_key(token, settings.auth.keys)
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    return Principal(key.id, key)


def authenticate_client_or_admin(
    settings: Settings, header: str | None, open_at_start: bool = False
) -> tuple[Principal, bool]:
    """A route any key may call, that shows an admin key more (``/v1/health``): the caller, and
    whether its key is an admin key."""
    token = bearer(header)
    admin = match_key(token, settings.auth.admin_keys) if token else None
    if admin is not None:
        return Principal(admin.id, admin), True
    return authenticate(settings, header, open_at_start), False


def authenticate_admin(settings: Settings, header: str | None) -> Principal:
    """``/admin/*``: an admin key (``auth.admin_keys``); a client key gets 403. With no admin
    keys configured the admin API is closed to everyone."""
    if not settings.auth.admin_keys:
        raise PermissionDenied(
            "The admin API is disabled: configure auth.admin_keys.", code="admin_disabled"
        )
    token = _required_bearer(header, "admin key")
    admin = match_key(token, settings.auth.admin_keys)
    if admin is None:
        if match_key(token, settings.auth.keys) is not None:
            raise PermissionDenied("This API key is not an admin key.")
        raise AuthenticationFailed("Incorrect API key provided.")
    return Principal(admin.id, admin)

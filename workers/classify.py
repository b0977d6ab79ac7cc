"""One table from provider outcome to what the gateway does (docs/architecture.md
"Errors and what happens to them").

``classify(err)`` answers: may the same provider be retried, may the job fall back to the
next deployment, should the provider be marked unhealthy, and what the client sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    GatewayError,
    GatewayTimeout,
    InvalidRequest,
    ModelNotFound,
    ProviderFailed,
    QuotaExhausted,
    RateLimited,
)
from workers.providers.base import ProviderCallError


@dataclass(frozen=True)
class ErrorClass:
    name: str
    retry_same: bool
    fallback: bool
    # What the client sees when this outcome ends the job: status, type and code are the
    # error class's own (shared/errors.py), not restated here.
    error: type[GatewayError]
    mark_unhealthy: bool = False
    # Counts against the provider's circuit breaker (the request's own faults do not).
    breaker_failure: bool = True


INVALID = ErrorClass("invalid_request", False, False, InvalidRequest, breaker_failure=False)
CONTEXT = ErrorClass("context_length", False, False, ContextLengthExceeded, breaker_failure=False)
CONTENT = ErrorClass("content_policy", False, False, ContentPolicyViolation, breaker_failure=False)
AUTH = ErrorClass("provider_auth", False, True, ProviderFailed, mark_unhealthy=True)
NOT_FOUND = ErrorClass("model_not_found", False, True, ModelNotFound, breaker_failure=False)
TIMEOUT = ErrorClass("timeout", True, True, GatewayTimeout)
CONNECTION = ErrorClass("connection", True, True, ProviderFailed)
CONFLICT = ErrorClass("conflict", True, True, ProviderFailed)
RATE_LIMITED = ErrorClass("rate_limited", True, True, RateLimited)
QUOTA = ErrorClass("quota_exhausted", False, True, QuotaExhausted)
SERVER = ErrorClass("server_error", True, True, ProviderFailed)
MALFORMED = ErrorClass("malformed_response", True, True, ProviderFailed)

_ZAI_CODES: dict[str, ErrorClass] = {
    **{str(c): AUTH for c in range(1000, 1005)},
    **{str(c): AUTH for c in range(1110, 1122)},  # account state (1113 below overrides)
    "1113": QUOTA,
    "1210": INVALID,
    "1211": NOT_FOUND,
    **{str(c): INVALID for c in range(1212, 1216)},
    **{str(c): AUTH for c in range(1220, 1223)},
    "1261": CONTEXT,
    "1301": CONTENT,
    "1302": RATE_LIMITED,
    "1303": RATE_LIMITED,
    "1304": QUOTA,
    "1305": RATE_LIMITED,
    "1308": QUOTA,
}
_OPENAI_CODES: dict[str, ErrorClass] = {
    "insufficient_quota": QUOTA,
    "context_length_exceeded": CONTEXT,
    "content_policy_violation": CONTENT,
    "content_filter": CONTENT,
    "model_not_found": NOT_FOUND,
    "invalid_api_key": AUTH,
}


def _by_status(status: int) -> ErrorClass:
    if status in (400, 413, 422):
        return INVALID
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status == 408:
        return TIMEOUT
    if status == 409:
        return CONFLICT
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER
    return INVALID


def classify(err: ProviderCallError) -> ErrorClass:
    if err.kind == "timeout":
        return TIMEOUT
    if err.kind == "connect":
        return CONNECTION
    if err.kind == "malformed":
        return MALFORMED
    if err.kind == "content_filter":
        return CONTENT
    if err.code is not None:
        known = _ZAI_CODES.get(err.code) or _OPENAI_CODES.get(err.code)
        if known is not None:
            return known
    if err.status is None:
        return SERVER
    return _by_status(err.status)


def client_error(err: ProviderCallError, cls: ErrorClass, provider: str) -> GatewayError:
    """The error the client sees when this outcome ends the job."""
    if cls.error is ProviderFailed or cls.error is GatewayTimeout:
        message = f"provider {provider} failed: {err}"
    else:
        message = err.message
    return cls.error(message)

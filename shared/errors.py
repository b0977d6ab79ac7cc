"""The gateway's one error tree.

Every error a client can see is a ``GatewayError`` and maps to one row of the table in
docs/architecture.md "Errors and what happens to them"::

    GatewayError (500 gateway_error)
    ├── InvalidRequest (400 invalid_request_error)
    │   ├── ContextLengthExceeded (400 context_length_exceeded)
    │   ├── ContentPolicyViolation (400 content_policy_violation)
    │   ├── MethodNotAllowed (405 method_not_allowed)
    │   └── UnsupportedMediaType (415 unsupported_media_type)
    ├── AuthenticationFailed (401 authentication_error)
    ├── PermissionDenied (403 permission_error)
    ├── NotFound (404 not_found_error)
    │   └── ModelNotFound (404 model_not_found)
    ├── Conflict (409 invalid_request_error)
    │   └── VersionConflict (409 config_conflict: shared.config.store)
    ├── PayloadTooLarge (413 invalid_request_error)
    ├── Unprocessable (422 invalid_request_error)
    │   └── ConfigError (422 invalid_config: a config that does not validate)
    ├── RateLimited (429 rate_limit_error)
    │   ├── QuotaExhausted (429 insufficient_quota: the provider's)
    │   └── BudgetExceeded (429 budget_exceeded: the API key's)
    ├── ProviderFailed (502 provider_error)
    ├── StorageFull (507 files_storage_full)
    ├── ServiceUnavailable (503 gateway_error)
    │   ├── QueueFull (503 queue_full)
    │   ├── NoHealthyProvider (503 no_healthy_provider)
    │   └── GatewayUnavailable (503 gateway_unavailable: Redis or the broker unreachable)
    └── GatewayTimeout (504 timeout_error)

Status and type belong to the class; a raise site chooses the class and, at most, a finer
code. Foreign errors are translated at the boundary (``raise Mapped(...) from exc``); the errors
of an unreachable Redis or broker are ``BACKEND_DOWN`` and become ``GatewayUnavailable``.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.exceptions import OperationalError as BrokerUnreachable

# What redis-py and kombu raise when the server cannot be reached or cannot serve now
# (connection refused or lost, a timeout, loading its AOF after a restart, a read-only
# replica after a failover). BusyLoadingError is a ConnectionError.
BACKEND_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    BrokerUnreachable,
)


class GatewayError(Exception):
    status: int = 500
    type: str = "gateway_error"
    code: str = "gateway_error"
    # None: let the client decide (its default rules); False: a retry cannot fix this.
    should_retry: bool | None = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
        job_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id  # the job this error is about, named in the envelope
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param
        self.retry_after = retry_after
        self.details = details or {}

    def to_error_object(self) -> dict[str, Any]:
        """The inner object of the OpenAI error envelope."""
        obj: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "param": self.param,
        }
        obj.update(self.details)
        return obj

    def envelope(self, job_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.to_error_object()}
        if job_id:
            body["job_id"] = job_id
        return body


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ContentPolicyViolation(InvalidRequest):
    code = "content_policy_violation"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(GatewayError):
    status = 422
    type = "invalid_request_error"
    code = "unprocessable"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    should_retry: bool | None = None


class QuotaExhausted(RateLimited):
    """The provider's quota or balance is spent: a retry cannot fix it, a fallback may."""

    code = "insufficient_quota"
    should_retry = False


class BudgetExceeded(RateLimited):
    """The API key's budget for its period is spent (or held by its requests in flight)."""

    code = "budget_exceeded"
    should_retry = False


class ProviderFailed(GatewayError):
    status = 502
    type = "provider_error"
    code = "provider_error"


class StorageFull(GatewayError):
    """The file store has no room left (``files.redis_max_bytes``): not a client's error, and
    not one a retry fixes until files are deleted."""

    status = 507
    type = "gateway_error"
    code = "files_storage_full"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "gateway_error"
    code = "service_unavailable"
    should_retry: bool | None = None


class QueueFull(ServiceUnavailable):
    code = "queue_full"


class NoHealthyProvider(ServiceUnavailable):
    code = "no_healthy_provider"
    should_retry = False


class GatewayUnavailable(ServiceUnavailable):
    """Redis or the broker cannot be reached: retry after a few seconds."""

    code = "gateway_unavailable"
    RETRY_AFTER_S = 5.0

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("retry_after", self.RETRY_AFTER_S)
        super().__init__(
            message or "The gateway cannot reach its Redis or broker right now; retry shortly.",
            **kwargs,
        )


class GatewayTimeout(GatewayError):
    status = 504
    type = "timeout_error"
    code = "timeout"


class ConfigError(Unprocessable):
    """An invalid configuration; ``errors`` maps dotted field paths to messages. Through the
    admin API a 422 ``invalid_config`` naming the first path (``param``) and every error."""

    code = "invalid_config"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        path, messages = sorted(errors.items())[0] if errors else ("", ["invalid"])
        super().__init__(
            f"{path}: {'; '.join(messages)}" if path else "; ".join(messages),
            param=path or None,
            details={"errors": errors},
        )

    def __str__(self) -> str:
        lines = [f"{path}: {'; '.join(msgs)}" for path, msgs in sorted(self.errors.items())]
        return "invalid configuration:\n  " + "\n  ".join(lines)


_BY_TYPE_AND_STATUS: dict[tuple[str, int], type[GatewayError]] = {
    (cls.type, cls.status): cls
    for cls in (
        InvalidRequest,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Unprocessable,
        RateLimited,
        ProviderFailed,
        ServiceUnavailable,
        GatewayTimeout,
    )
}


def for_http_status(status: int) -> type[GatewayError]:
    """The error class of an HTTP status the web framework raised (an unknown route, a wrong
    method, a body over the limit): status, type and code come from the tree alone."""
    by_status: dict[int, type[GatewayError]] = {
        400: InvalidRequest,
        401: AuthenticationFailed,
        403: PermissionDenied,
        404: NotFound,
        405: MethodNotAllowed,
        409: Conflict,
        413: PayloadTooLarge,
        415: UnsupportedMediaType,
        422: Unprocessable,
    }
    return by_status.get(status, InvalidRequest if status < 500 else GatewayError)


def _tree(root: type[GatewayError]) -> list[type[GatewayError]]:
    return [root, *(c for sub in root.__subclasses__() for c in _tree(sub))]


def from_stored(obj: dict[str, Any]) -> GatewayError:
    """Rebuild an error from a job record's ``error`` object (see ``stored_error``): the class
    of that code, type and status when the tree has one, else the class of type and status."""
    status = int(obj.get("status") or 500)
    kind, code = str(obj.get("type") or GatewayError.type), str(obj.get("code") or "")
    # ConfigError never lands on a job record (and is built from its errors, not a message).
    exact = {(c.code, c.type, c.status): c for c in _tree(GatewayError) if c is not ConfigError}
    cls = exact.get((code, kind, status)) or _BY_TYPE_AND_STATUS.get((kind, status), GatewayError)
    extra = {
        k: v for k, v in obj.items() if k not in {"message", "type", "code", "param", "status"}
    }
    err = cls(
        str(obj.get("message") or "job failed"),
        code=code or None,
        param=obj.get("param"),
        # A stored error the tree has no class for keeps what was stored.
        status=None if cls.status == status else status,
        details=extra,
    )
    err.type = kind
    return err


def stored_error(err: GatewayError) -> dict[str, Any]:
    """The ``error`` object kept on a job record: the envelope's inner object plus ``status``."""
    obj = err.to_error_object()
    obj["status"] = err.status
    return obj

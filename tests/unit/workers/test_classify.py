"""The error table (docs/architecture.md "Errors and what happens to them"), row by row."""

from __future__ import annotations

import pytest

from workers.classify import classify, client_error
from workers.providers.base import ProviderCallError


def http(status: int, code: str | None = None) -> ProviderCallError:
    return ProviderCallError("http", "upstream said no", status=status, code=code)


# (error, class name, retry same provider, fall back, client status, client code)
ROWS = [
    (http(400), "invalid_request", False, False, 400, "invalid_request"),
    (http(422), "invalid_request", False, False, 400, "invalid_request"),
    (http(400, "1210"), "invalid_request", False, False, 400, "invalid_request"),
    *[
        (http(400, str(c)), "invalid_request", False, False, 400, "invalid_request")
        for c in (1212, 1213, 1214, 1215)
    ],
    (http(400, "1261"), "context_length", False, False, 400, "context_length_exceeded"),
    (
        http(400, "context_length_exceeded"),
        "context_length",
        False,
        False,
        400,
        "context_length_exceeded",
    ),
    (http(400, "1301"), "content_policy", False, False, 400, "content_policy_violation"),
    (
        ProviderCallError("content_filter", "blocked", status=200, code="1301"),
        "content_policy",
        False,
        False,
        400,
        "content_policy_violation",
    ),
    (http(401), "provider_auth", False, True, 502, "provider_error"),
    (http(403), "provider_auth", False, True, 502, "provider_error"),
    *[
        (http(401, str(c)), "provider_auth", False, True, 502, "provider_error")
        for c in (1000, 1001, 1002, 1003, 1004)
    ],
    (http(404), "model_not_found", False, True, 404, "model_not_found"),
    (http(400, "1211"), "model_not_found", False, True, 404, "model_not_found"),
    (ProviderCallError("timeout", "slow"), "timeout", True, True, 504, "timeout"),
    (ProviderCallError("connect", "refused"), "connection", True, True, 502, "provider_error"),
    (http(408), "timeout", True, True, 504, "timeout"),
    (http(409), "conflict", True, True, 502, "provider_error"),
    (http(429), "rate_limited", True, True, 429, "rate_limit_exceeded"),
    *[
        (http(429, str(c)), "rate_limited", True, True, 429, "rate_limit_exceeded")
        for c in (1302, 1303, 1305)
    ],
    (http(503, "1305"), "rate_limited", True, True, 429, "rate_limit_exceeded"),
    (http(429, "insufficient_quota"), "quota_exhausted", False, True, 429, "insufficient_quota"),
    *[
        (http(429, str(c)), "quota_exhausted", False, True, 429, "insufficient_quota")
        for c in (1113, 1304, 1308)
    ],
    *[
        (http(s), "server_error", True, True, 502, "provider_error")
        for s in (500, 502, 503, 504, 529)
    ],
    (
        ProviderCallError("malformed", "not json", status=200),
        "malformed_response",
        True,
        True,
        502,
        "provider_error",
    ),
]


@pytest.mark.parametrize(("err", "name", "retry", "fallback", "status", "code"), ROWS)
def test_row(
    err: ProviderCallError, name: str, retry: bool, fallback: bool, status: int, code: str
) -> None:
    cls = classify(err)
    assert (cls.name, cls.retry_same, cls.fallback) == (name, retry, fallback)
    client = client_error(err, cls, "z-ai")
    assert (client.status, client.code) == (status, code)


def test_auth_failure_marks_the_provider_unhealthy() -> None:
    assert classify(http(401)).mark_unhealthy
    assert not classify(http(500)).mark_unhealthy

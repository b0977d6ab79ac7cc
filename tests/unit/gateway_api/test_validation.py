"""The front door's validation and auth, with fakeredis and a recorded enqueue (no worker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.errors import ConfigError
from tests.support.api import OK, H, Published, make_app
from tests.support.clients import CLIENT_KEY
from tests.support.stack import KEYS


@pytest.fixture
def enqueued() -> Published:
    return Published()


@pytest.fixture
def client(enqueued: Published) -> Iterator[FlaskClient]:
    yield make_app(enqueued).test_client()


def err(resp: Any) -> dict[str, Any]:
    body = resp.get_json()
    assert set(body) >= {"error"}, body
    assert set(body["error"]) >= {"message", "type", "code", "param"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages.0.role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
        ({**OK, "temperature": 3}, "temperature"),
        ({**OK, "temperature": "0.5"}, "temperature"),
        ({**OK, "top_p": -0.1}, "top_p"),
        ({**OK, "n": 0}, "n"),
        ({**OK, "n": True}, "n"),
        ({**OK, "max_tokens": 0}, "max_tokens"),
        ({**OK, "max_completion_tokens": "many"}, "max_completion_tokens"),
        ({**OK, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({**OK, "seed": 1.5}, "seed"),
        ({**OK, "user": 7}, "user"),
        ({**OK, "metadata": {"a": 1}}, "metadata.a"),
        (
            {**OK, "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools.0.function.name",
        ),
        ({**OK, "tool_choice": "sometimes"}, "tool_choice"),
        ({**OK, "response_format": {"type": "xml"}}, "response_format.type"),
        ({**OK, "response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({**OK, "stream": "yes"}, "stream"),
        (
            {**OK, "stream": True, "stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
        ),
        ({**OK, "gateway": {"priority": "urgent"}}, "gateway.priority"),
        ({**OK, "gateway": {"surprise": 1}}, "gateway.surprise"),
        ({**OK, "messages": [{"role": "user", "content": "x"}] * 4}, "messages"),
    ],
)
def test_invalid_bodies_answer_400_naming_the_field(
    client: FlaskClient, body: dict[str, Any], param: str, enqueued: Published
) -> None:
    resp = client.post("/v1/chat/completions", json=body, headers=H)
    assert resp.status_code == 400, resp.get_json()
    e = err(resp)
    assert e["type"] == "invalid_request_error"
    assert e["param"] == param
    assert resp.headers["x-should-retry"] == "false"
    assert enqueued == []


LIMITED = {
    "max_body_bytes": 1024 * 1024,
    "max_messages": 3,
    "max_content_chars": 100,
    "max_n": 4,
    "max_tokens": 500,
}


@pytest.mark.parametrize(
    ("body", "param", "bound"),
    [
        ({**OK, "messages": [{"role": "user", "content": "x" * 101}]}, "messages", "100"),
        (
            {
                **OK,
                "messages": [
                    {"role": "system", "content": "y" * 60},
                    {"role": "user", "content": [{"type": "text", "text": "z" * 41}]},
                ],
            },
            "messages",
            "limits.max_content_chars",
        ),
        ({**OK, "n": 5}, "n", "limits.max_n"),
        ({**OK, "max_tokens": 501}, "max_tokens", "limits.max_tokens"),
        ({**OK, "max_completion_tokens": 10**9}, "max_completion_tokens", "at most 500"),
        ({**OK, "messages": [{"role": "user", "content": "x"}] * 4}, "messages", "max_messages"),
    ],
)
def test_configured_request_bounds_answer_400(
    enqueued: Published, body: dict[str, Any], param: str, bound: str
) -> None:
    client = make_app(enqueued, limits=LIMITED).test_client()
    resp = client.post("/v1/chat/completions", json=body, headers=H)
    assert resp.status_code == 400, resp.get_json()
    e = err(resp)
    assert (e["type"], e["param"]) == ("invalid_request_error", param)
    assert bound in e["message"]
    jobs = client.post("/v1/jobs", json={"request": body}, headers=H)
    assert jobs.status_code == 400
    assert err(jobs)["param"] == f"request.{param}"
    assert enqueued == []


def test_requests_at_the_bounds_are_accepted(enqueued: Published) -> None:
    client = make_app(enqueued, limits=LIMITED).test_client()
    body = {
        **OK,
        "messages": [{"role": "user", "content": "x" * 100}],
        "n": 4,
        "max_tokens": 500,
        "max_completion_tokens": 500,
    }
    resp = client.post("/v1/chat/completions", json=body, headers={**H, "Prefer": "respond-async"})
    assert resp.status_code == 202, resp.get_json()
    assert len(enqueued) == 1


def test_unknown_model_is_404_model_not_found(client: FlaskClient) -> None:
    resp = client.post("/v1/chat/completions", json={**OK, "model": "nope"}, headers=H)
    assert resp.status_code == 404
    assert err(resp)["code"] == "model_not_found"


@pytest.mark.parametrize("raw", [b"{", b"", b"null", b"[1,2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400(client: FlaskClient, raw: bytes) -> None:
    resp = client.post(
        "/v1/chat/completions", data=raw, headers={**H, "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert err(resp)["type"] == "invalid_request_error"


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    big = {**OK, "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = client.post("/v1/chat/completions", json=big, headers=H)
    assert resp.status_code == 413
    assert err(resp)["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk-nope"}, "invalid_api_key"),
        ({"Authorization": f"Basic {CLIENT_KEY}"}, "missing_api_key"),
    ],
)
def test_auth_failures_are_401(client: FlaskClient, headers: dict[str, str], code: str) -> None:
    for method, path in (
        ("post", "/v1/chat/completions"),
        ("get", "/v1/models"),
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/job_x"),
    ):
        resp = getattr(client, method)(path, json=OK, headers=headers)
        assert resp.status_code == 401, path
        e = err(resp)
        assert (e["type"], e["code"]) == ("authentication_error", code)


def test_async_chat_enqueues_at_interactive_and_stores_no_key(
    client: FlaskClient, enqueued: Published
) -> None:
    resp = client.post(
        "/v1/chat/completions",
        json={**OK, "extra": "forwarded"},
        headers={**H, "Prefer": "respond-async"},
    )
    assert resp.status_code == 202
    job = resp.get_json()
    assert enqueued == [(job["id"], "interactive")]
    assert job["id"].startswith("job_") and len(job["id"]) == 4 + 32
    services = client.application.extensions["gateway"]
    stored = services.redis.hgetall(KEYS.job(job["id"]))
    request = json.loads(stored["request"])
    assert request["extra"] == "forwarded" and request["model"] == "m"
    assert CLIENT_KEY not in json.dumps(stored)
    assert stored["owner"] == "team-a"


def test_jobs_body_is_validated(client: FlaskClient, enqueued: Published) -> None:
    bad = client.post("/v1/jobs", json={"request": {"messages": []}}, headers=H)
    assert bad.status_code == 400 and err(bad)["param"] == "request.messages"
    bad = client.post("/v1/jobs", json={"request": OK, "priority": "vip"}, headers=H)
    assert bad.status_code == 400 and err(bad)["param"] == "priority"
    bad = client.post("/v1/jobs", json={"request": OK, "deadline_s": 99999}, headers=H)
    assert bad.status_code == 400 and err(bad)["param"] == "deadline_s"
    ok = client.post("/v1/jobs", json={"request": OK}, headers=H)
    assert ok.status_code == 202 and ok.get_json()["priority"] == "normal"
    assert enqueued[-1][1] == "normal"


def test_failed_publish_answers_503_and_marks_the_job_failed() -> None:
    def broken(app: Any, job_id: str, priority: str) -> None:
        raise ConnectionError("broker down")

    app = make_app(broken)
    resp = app.test_client().post("/v1/jobs", json={"request": OK}, headers=H)
    assert resp.status_code == 503
    assert err(resp)["code"] == "gateway_unavailable"
    assert resp.headers["Retry-After"] == "5"
    services = app.extensions["gateway"]
    (key,) = services.redis.keys(KEYS.job("*"))
    assert services.redis.hget(key, "status") == "failed"


def test_unknown_routes_and_methods_use_the_envelope(client: FlaskClient) -> None:
    assert err(client.get("/v1/nothing-here", headers=H))["type"] == "not_found_error"
    resp = client.get("/v1/chat/completions", headers=H)
    assert resp.status_code == 405 and err(resp)["code"] == "method_not_allowed"


def test_job_ids_that_do_not_exist_are_404(client: FlaskClient) -> None:
    for path in ("/v1/jobs/job_00000000000000000000000000000000", "/v1/jobs/../../etc"):
        assert client.get(path, headers=H).status_code == 404


def test_models_and_health_live(client: FlaskClient) -> None:
    models = client.get("/v1/models", headers=H).get_json()
    assert models == {
        "object": "list",
        "data": [
            {
                "id": "m",
                "object": "model",
                "created": models["data"][0]["created"],
                "owned_by": "llm-gateway",
            }
        ],
    }
    assert client.get("/health/live").get_json() == {"status": "ok"}


def test_request_id_is_generated_or_echoed(client: FlaskClient) -> None:
    assert client.get("/health/live").headers["X-Request-ID"]
    echoed = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    unsafe = client.get("/health/live", headers={"X-Request-ID": "bad\x01id"})
    assert unsafe.headers["X-Request-ID"] != "bad\x01id"


def test_metrics_exposes_request_counters(client: FlaskClient) -> None:
    client.get("/v1/models", headers=H)
    text = client.get("/metrics").get_data(as_text=True)
    assert "gateway_http_requests_total" in text
    assert 'route="/v1/models"' in text
    assert "gateway_http_request_duration_seconds_bucket" in text


def test_metrics_token_when_configured(enqueued: Published) -> None:
    client = make_app(enqueued, metrics={"token": "scrape-me"}).test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200


def test_open_mode_without_keys(enqueued: Published) -> None:
    client = make_app(enqueued, auth={"keys": [], "admin_keys": []}).test_client()
    resp = client.post("/v1/chat/completions", json=OK, headers={"Prefer": "respond-async"})
    assert resp.status_code == 202


def test_queue_full_by_depth_answers_503_with_retry_after(
    enqueued: Published,
) -> None:
    client = make_app(enqueued, queue={"max_depth": 2}).test_client()
    for _ in range(2):
        ok = client.post("/v1/jobs", json={"request": OK}, headers=H)
        assert ok.status_code == 202
    full = client.post("/v1/jobs", json={"request": OK}, headers=H)
    assert full.status_code == 503
    assert err(full)["code"] == "queue_full"
    assert int(full.headers["Retry-After"]) >= 1
    assert "x-should-retry" not in full.headers  # retrying later is the right move
    assert len(enqueued) == 2  # nothing was accepted past the limit


def test_queue_full_by_age_of_the_oldest_job(enqueued: Published) -> None:
    app = make_app(enqueued, queue={"max_age_s": 60, "redeliver_after_s": 30})
    services = app.extensions["gateway"]
    services.redis.zadd(KEYS.pending("normal"), {"job_old": 1000.0})  # queued long ago, never begun
    resp = app.test_client().post("/v1/jobs", json={"request": OK}, headers=H)
    assert resp.status_code == 503 and err(resp)["code"] == "queue_full"
    assert "waited" in err(resp)["message"]


def test_an_idempotency_key_is_released_when_its_job_is_refused(
    enqueued: Published,
) -> None:
    app = make_app(enqueued, queue={"max_depth": 1})
    client = app.test_client()
    assert client.post("/v1/jobs", json={"request": OK}, headers=H).status_code == 202
    keyed = {**H, "Idempotency-Key": "retry-me"}
    refused = client.post("/v1/jobs", json={"request": OK}, headers=keyed)
    assert refused.status_code == 503 and err(refused)["code"] == "queue_full"
    app.extensions["gateway"].redis.delete(KEYS.pending("normal"))  # the backlog drains
    accepted = client.post("/v1/jobs", json={"request": OK}, headers=keyed)
    assert accepted.status_code == 202  # the refused attempt did not keep the key
    again = client.post("/v1/jobs", json={"request": OK}, headers=keyed)
    assert again.get_json()["id"] == accepted.get_json()["id"]


def test_cors_is_off_unless_configured(enqueued: Published) -> None:
    origin = {"Origin": "https://app.example.com"}
    off = make_app(enqueued).test_client().get("/v1/models", headers={**H, **origin})
    assert off.status_code == 200 and "Access-Control-Allow-Origin" not in off.headers
    client = make_app(enqueued, cors={"allowed_origins": ["https://app.example.com"]}).test_client()
    on = client.get("/v1/models", headers={**H, **origin})
    assert on.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Gateway-Job-Id" in on.headers["Access-Control-Expose-Headers"]
    other = client.get("/v1/models", headers={**H, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/v1/chat/completions",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "idempotency-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
    # Never on the operator's paths.
    assert "Access-Control-Allow-Origin" not in client.get("/metrics", headers=origin).headers


def test_cors_origins_are_validated() -> None:
    with pytest.raises(ConfigError, match="cors.allowed_origins"):
        make_app(cors={"allowed_origins": ["not an origin"]})


def test_framework_errors_take_status_type_and_code_from_the_error_tree() -> None:
    from shared.errors import (
        MethodNotAllowed,
        NotFound,
        PayloadTooLarge,
        UnsupportedMediaType,
        for_http_status,
    )

    assert for_http_status(404) is NotFound and NotFound("x").type == "not_found_error"
    assert for_http_status(405) is MethodNotAllowed and MethodNotAllowed("x").status == 405
    assert for_http_status(413) is PayloadTooLarge
    assert UnsupportedMediaType("x").code == "unsupported_media_type"
    assert for_http_status(418).__name__ == "InvalidRequest"

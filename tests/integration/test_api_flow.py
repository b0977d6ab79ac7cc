"""The whole path over real HTTP: gunicorn API -> Redis -> Celery gevent worker -> mock provider."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support import web
from tests.support.clients import CLIENT_KEY, OTHER_KEY
from tests.support.stack import KEYS, Stack, wait_for

H = {"Authorization": f"Bearer {CLIENT_KEY}"}
H_OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


def chat(
    stack: Stack, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 30
) -> httpx.Response:
    return web.post(
        f"{stack.api_url}/v1/chat/completions", json=body, headers=headers or H, timeout=timeout
    )


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_sync_chat_returns_the_provider_answer_with_gateway_headers(
    stack: Stack, unique: str
) -> None:
    resp = chat(
        stack, {"model": "mock-model", "messages": msg(f"hello {unique}"), "mock": {"key": unique}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == f"mock answer to: hello {unique}"
    assert body["usage"]["total_tokens"] > 0
    assert resp.headers["X-Gateway-Job-Id"].startswith("job_")
    assert resp.headers["X-Gateway-Provider"] == "mock"
    assert resp.headers["X-Gateway-Cache"] == "miss"
    assert resp.headers["X-Request-ID"]
    assert stack.mock_calls(unique) == 1

    job = web.get(f"{stack.api_url}/v1/jobs/{resp.headers['X-Gateway-Job-Id']}", headers=H).json()
    assert job["status"] == "succeeded"
    assert job["priority"] == "interactive"
    assert job["result"] == body
    assert [a["outcome"] for a in job["attempts"]] == ["success"]
    assert job["attempts"][0]["provider"] == "mock"
    assert job["config_version"]
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]


def test_request_id_is_echoed_and_reaches_the_job(stack: Stack, unique: str) -> None:
    resp = chat(stack, {"messages": msg("rid")}, headers={**H, "X-Request-ID": f"rid-{unique}"})
    assert resp.status_code == 200
    assert resp.headers["X-Request-ID"] == f"rid-{unique}"
    job_id = resp.headers["X-Gateway-Job-Id"]
    assert stack.redis.hget(KEYS.job(job_id), "request_id") == f"rid-{unique}"


def test_prefer_respond_async_answers_202_with_location(stack: Stack, unique: str) -> None:
    resp = web.post(
        f"{stack.api_url}/v1/chat/completions",
        json={"messages": msg(unique)},
        headers={**H, "Prefer": "respond-async"},
    )
    assert resp.status_code == 202
    job = resp.json()
    assert resp.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["object"] == "job" and job["status"] in ("queued", "running", "succeeded")
    done = web.get(
        f"{stack.api_url}{resp.headers['Location']}?wait=20", headers=H, timeout=30
    ).json()
    assert done["status"] == "succeeded"


def test_jobs_api_submit_poll_and_list(stack: Stack, unique: str) -> None:
    resp = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=H,
        json={
            "request": {
                "model": "mock-model",
                "messages": msg(unique),
                "mock": {"latency_ms": 300},
            },
            "priority": "batch",
            "metadata": {"ticket": unique},
        },
    )
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["priority"] == "batch" and job["metadata"] == {"ticket": unique}
    assert job["result"] is None
    # Long-poll wakes on the completion notice, well before the wait runs out.
    started = time.time()
    done = web.get(
        f"{stack.api_url}/v1/jobs/{job['id']}", params={"wait": 20}, headers=H, timeout=30
    ).json()
    assert done["status"] == "succeeded"
    assert time.time() - started < 10
    assert done["result"]["choices"][0]["message"]["content"].endswith(unique)

    listed = web.get(f"{stack.api_url}/v1/jobs", params={"limit": 100}, headers=H).json()
    assert listed["object"] == "list"
    assert job["id"] in [j["id"] for j in listed["data"]]
    created = [j["created_at"] for j in listed["data"]]
    assert created == sorted(created, reverse=True)


def test_jobs_list_paginates_with_after(stack: Stack, unique: str) -> None:
    ids = []
    for i in range(3):
        r = web.post(
            f"{stack.api_url}/v1/jobs",
            headers=H_OTHER,
            json={"request": {"messages": msg(f"{unique}-{i}")}},
        )
        ids.append(r.json()["id"])
    page1 = web.get(f"{stack.api_url}/v1/jobs", params={"limit": 2}, headers=H_OTHER).json()
    assert page1["has_more"] is True and len(page1["data"]) == 2
    page2 = web.get(
        f"{stack.api_url}/v1/jobs", params={"limit": 2, "after": page1["last_id"]}, headers=H_OTHER
    ).json()
    seen = [j["id"] for j in page1["data"] + page2["data"]]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))


def test_a_job_is_visible_only_to_the_key_that_created_it(stack: Stack, unique: str) -> None:
    job = web.post(
        f"{stack.api_url}/v1/jobs", headers=H, json={"request": {"messages": msg(unique)}}
    ).json()
    other = web.get(f"{stack.api_url}/v1/jobs/{job['id']}", headers=H_OTHER)
    assert other.status_code == 404
    assert other.json()["error"]["type"] == "not_found_error"
    assert web.delete(f"{stack.api_url}/v1/jobs/{job['id']}", headers=H_OTHER).status_code == 404
    listed = web.get(f"{stack.api_url}/v1/jobs", params={"limit": 100}, headers=H_OTHER).json()
    assert job["id"] not in [j["id"] for j in listed["data"]]


def test_cancel_running_job_discards_the_late_result(stack: Stack, unique: str) -> None:
    job = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=H,
        json={"request": {"messages": msg(unique), "mock": {"latency_ms": 1500, "key": unique}}},
    ).json()
    wait_for(lambda: stack.mock_calls(unique) == 1, 10, "the provider call to start")
    resp = web.delete(f"{stack.api_url}/v1/jobs/{job['id']}", headers=H)
    assert resp.status_code == 202
    assert resp.json()["status"] == "cancelled"
    again = web.delete(f"{stack.api_url}/v1/jobs/{job['id']}", headers=H)
    assert again.status_code == 200
    time.sleep(2.5)  # the provider answers; the worker must not overwrite the cancel
    final = web.get(f"{stack.api_url}/v1/jobs/{job['id']}", headers=H).json()
    assert final["status"] == "cancelled"
    assert final["result"] is None
    assert stack.redis.exists(KEYS.lease(job["id"])) == 0


def test_cancel_finished_job_is_409(stack: Stack, unique: str) -> None:
    resp = chat(stack, {"messages": msg(unique)})
    job_id = resp.headers["X-Gateway-Job-Id"]
    conflict = web.delete(f"{stack.api_url}/v1/jobs/{job_id}", headers=H)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "job_already_finished"


def test_deadline_passing_during_the_call_expires_the_job_with_504(
    stack: Stack, unique: str
) -> None:
    started = time.time()
    resp = chat(
        stack, {"messages": msg(unique), "mock": {"latency_ms": 5000}, "gateway": {"deadline_s": 1}}
    )
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["type"] == "timeout_error"
    assert resp.json()["job_id"] == resp.headers["X-Gateway-Job-Id"]
    assert resp.headers["x-should-retry"] == "false"
    assert time.time() - started < 4.5
    job = stack.wait_job(resp.json()["job_id"], {"expired", "failed", "succeeded"}, 10, H)
    assert job["status"] == "expired"


@pytest.mark.parametrize(
    ("directive", "status", "etype", "code"),
    [
        ({"status": 400, "message": "bad param"}, 400, "invalid_request_error", "invalid_request"),
        ({"status": 429, "code": "1113"}, 429, "rate_limit_error", "insufficient_quota"),
        ({"status": 400, "code": "1261"}, 400, "invalid_request_error", "context_length_exceeded"),
        ({"status": 400, "code": "1301"}, 400, "invalid_request_error", "content_policy_violation"),
        # (401 marks its provider unhealthy: tested on its own provider below)
        ({"status": 500}, 502, "provider_error", "provider_error"),
        ({"malformed": True}, 502, "provider_error", "provider_error"),
        ({"finish_reason": "sensitive"}, 400, "invalid_request_error", "content_policy_violation"),
    ],
)
def test_zai_outcomes_map_to_openai_errors(
    stack: Stack, unique: str, directive: dict[str, Any], status: int, etype: str, code: str
) -> None:
    resp = chat(
        stack, {"model": "glm-4.6", "messages": msg(unique), "mock": {**directive, "key": unique}}
    )
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert (err["type"], err["code"]) == (etype, code)
    assert resp.headers["x-should-retry"] == "false"
    job = web.get(f"{stack.api_url}/v1/jobs/{resp.json()['job_id']}", headers=H).json()
    assert job["status"] == "failed"
    assert job["attempts"][0]["outcome"] == "error"


def test_provider_auth_failure_is_502_and_marks_the_provider_unhealthy(
    stack: Stack, unique: str
) -> None:
    resp = chat(
        stack,
        {
            "model": "glm-auth",
            "messages": msg(unique),
            "mock": {"status": 401, "code": "1002", "key": unique},
        },
    )
    assert resp.status_code == 502, resp.text
    assert resp.json()["error"]["type"] == "provider_error"
    assert stack.mock_calls(unique) == 1  # not retried
    health = stack.redis.hgetall(KEYS.health("z-ai-auth"))
    assert "401" in health["last_error"]
    # Marked down by the failed call; a health probe (every 2 s here; the mock accepts any
    # key) may have marked it up again since, and then it checked after the failure.
    assert health["healthy"] == "0" or float(health["checked_at"]) > float(health["last_error_at"])


def test_provider_failure_falls_back_to_the_next_deployment(stack: Stack, unique: str) -> None:
    # The mock fails only the first call carrying this key: the primary's. A 404 (model not
    # found) is not retried on the same provider; it falls back.
    resp = chat(
        stack,
        {
            "model": "with-fallback",
            "messages": msg(unique),
            "mock": {"status": 404, "fail_times": 1, "key": unique},
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Gateway-Provider"] == "backup"
    assert resp.json()["model"] == "backup-model"
    job = web.get(f"{stack.api_url}/v1/jobs/{resp.headers['X-Gateway-Job-Id']}", headers=H).json()
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [
        ("mock", "error"),
        ("backup", "success"),
    ]
    assert job["attempts"][0]["error"]["status"] == 404
    assert stack.mock_calls(unique) == 2


def test_job_records_expire_and_hold_no_client_key(stack: Stack, unique: str) -> None:
    resp = chat(stack, {"messages": msg(unique)})
    key = KEYS.job(resp.headers["X-Gateway-Job-Id"])
    ttl = stack.redis.ttl(key)
    assert 0 < ttl <= 86400
    dump = str(stack.redis.hgetall(key))
    assert CLIENT_KEY not in dump


def test_jobs_still_finish_after_redis_forgets_its_scripts(stack: Stack, unique: str) -> None:
    # As after a Redis restart: every Lua script must be loaded again, pipelined ones included.
    stack.redis.script_flush()
    resp = chat(stack, {"messages": msg(unique)})
    assert resp.status_code == 200, resp.text
    job = web.get(f"{stack.api_url}/v1/jobs/{resp.headers['X-Gateway-Job-Id']}", headers=H)
    assert job.json()["status"] == "succeeded"
    again = chat(stack, {"messages": msg(f"{unique}-2")})
    assert again.status_code == 200

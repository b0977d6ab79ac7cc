"""Idempotency-Key on POST /v1/jobs and POST /v1/chat/completions, against the real stack."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from gateway_api.services import Services
from tests.support import web
from tests.support.api import make_app
from tests.support.clients import CLIENT_KEY, OTHER_KEY
from tests.support.stack import Stack

H = {"Authorization": f"Bearer {CLIENT_KEY}"}


def job_body(text: str) -> dict[str, object]:
    return {
        "request": {
            "messages": [{"role": "user", "content": text}],
            "mock": {"latency_ms": 200, "key": text},
        }
    }


def test_same_key_and_body_give_the_same_job(stack: Stack, unique: str) -> None:
    headers = {**H, "Idempotency-Key": f"idem-{unique}"}
    first = web.post(f"{stack.api_url}/v1/jobs", headers=headers, json=job_body(unique))
    second = web.post(f"{stack.api_url}/v1/jobs", headers=headers, json=job_body(unique))
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    stack.wait_job(first.json()["id"], {"succeeded"}, headers=H)
    assert stack.mock_calls(unique) == 1


def test_same_key_with_another_body_is_422(stack: Stack, unique: str) -> None:
    headers = {**H, "Idempotency-Key": f"idem-{unique}"}
    web.post(f"{stack.api_url}/v1/jobs", headers=headers, json=job_body(unique))
    other = web.post(f"{stack.api_url}/v1/jobs", headers=headers, json=job_body(f"{unique}-x"))
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # The same key on the other endpoint is another request too.
    chat = web.post(
        f"{stack.api_url}/v1/chat/completions", headers=headers, json=job_body(unique)["request"]
    )
    assert chat.status_code == 422


def test_sync_chat_repeat_gets_the_same_answer_from_one_call(stack: Stack, unique: str) -> None:
    headers = {**H, "Idempotency-Key": f"idem-{unique}"}
    body = {"messages": [{"role": "user", "content": unique}], "mock": {"key": unique}}
    first = web.post(f"{stack.api_url}/v1/chat/completions", headers=headers, json=body)
    second = web.post(f"{stack.api_url}/v1/chat/completions", headers=headers, json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.headers["X-Gateway-Job-Id"] == second.headers["X-Gateway-Job-Id"]
    assert stack.mock_calls(unique) == 1


def test_concurrent_duplicates_create_exactly_one_job(stack: Stack, unique: str) -> None:
    headers = {**H, "Idempotency-Key": f"idem-{unique}"}

    def post(_: int) -> httpx.Response:
        return web.post(f"{stack.api_url}/v1/jobs", headers=headers, json=job_body(unique))

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(post, range(10)))
    assert {a.status_code for a in answers} == {202}
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    stack.wait_job(ids.pop(), {"succeeded"}, headers=H)
    assert stack.mock_calls(unique) == 1


def test_keys_are_scoped_to_the_api_key(stack: Stack, unique: str) -> None:
    mine = web.post(
        f"{stack.api_url}/v1/jobs", json=job_body(unique), headers={**H, "Idempotency-Key": unique}
    )
    theirs = web.post(
        f"{stack.api_url}/v1/jobs",
        json=job_body(unique),
        headers={"Authorization": f"Bearer {OTHER_KEY}", "Idempotency-Key": unique},
    )
    assert theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


def test_an_overlong_key_is_400(stack: Stack) -> None:
    resp = web.post(
        f"{stack.api_url}/v1/jobs", json=job_body("x"), headers={**H, "Idempotency-Key": "k" * 256}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "Idempotency-Key"


def test_a_claim_never_outlives_its_job_record(redis_db: str, unique: str) -> None:
    # A replay after the record expired must not find a claim naming a job that is gone.
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    app = make_app(client=client, queue={"result_ttl_s": 3600, "max_deadline_s": 3600})
    services: Services = app.extensions["gateway"]
    resp = app.test_client().post(
        "/v1/jobs",
        json={"request": {"model": "m", "messages": [{"role": "user", "content": unique}]}},
        headers={**H, "Idempotency-Key": unique},
    )
    assert resp.status_code == 202, resp.get_json()
    claim = services.keys.idempotency("team-a", hashlib.sha256(unique.encode()).hexdigest())
    record = services.keys.job(resp.get_json()["id"])
    assert 0 < client.ttl(claim) <= client.ttl(record) <= 3600
    client.close()

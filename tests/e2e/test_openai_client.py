"""The official openai client, unchanged, against a running stack (gunicorn API + worker)."""

from __future__ import annotations

import openai
import pytest

from tests.support import web
from tests.support.clients import CLIENT_KEY
from tests.support.stack import Stack


@pytest.fixture
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=30
    )


def test_chat_completion_answer_and_usage(client: openai.OpenAI, unique: str) -> None:
    completion = client.chat.completions.create(
        model="mock-model",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": f"ping {unique}"},
        ],
        temperature=0.2,
        max_tokens=50,
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == f"mock answer to: ping {unique}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_raw_response_carries_gateway_headers(client: openai.OpenAI, unique: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="glm-4.6",
        messages=[{"role": "user", "content": unique}],
        extra_body={"gateway": {"priority": "normal"}},
    )
    assert raw.headers["x-gateway-job-id"].startswith("job_")
    assert raw.headers["x-gateway-provider"] == "z-ai"
    assert raw.parse().choices[0].message.content.endswith(unique)


def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"mock-model", "glm-4.6", "with-fallback"} <= ids


def test_bad_key_raises_authentication_error(stack: Stack) -> None:
    bad = openai.OpenAI(api_key="sk-wrong", base_url=f"{stack.api_url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="mock-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401


def test_invalid_request_raises_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="mock-model",
            messages=[],
        )
    assert info.value.status_code == 400
    assert "messages" in str(info.value)


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )


def test_final_provider_error_is_not_retried_by_the_client(stack: Stack, unique: str) -> None:
    # With the SDK's default retries on, a 429 from the provider would become three jobs
    # unless the gateway says x-should-retry: false.
    retrying = openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=2)
    with pytest.raises(openai.RateLimitError):
        retrying.chat.completions.create(
            model="glm-4.6",
            messages=[{"role": "user", "content": unique}],
            extra_body={"mock": {"status": 429, "code": "1113", "key": unique}},
        )
    assert stack.mock_calls(unique) == 1


def test_jobs_api_with_plain_http(stack: Stack, unique: str) -> None:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    job = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=headers,
        json={
            "request": {"model": "mock-model", "messages": [{"role": "user", "content": unique}]}
        },
    ).json()
    done = web.get(
        f"{stack.api_url}/v1/jobs/{job['id']}?wait=20", headers=headers, timeout=30
    ).json()
    assert done["status"] == "succeeded"
    # The stored result parses as the SDK's own type.
    parsed = openai.types.chat.ChatCompletion.model_validate(done["result"])
    assert parsed.choices[0].message.content is not None
    assert parsed.choices[0].message.content.endswith(unique)

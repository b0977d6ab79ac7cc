"""Wire fidelity with the official openai client: what a request asked for is honoured, refused
with a 400 naming the field, or (one exception) served in a lesser form that the answer
names; and the response cache never hands one kind of answer to a request for another."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.support.clients import CLIENT_KEY
from tests.support.stack import Stack

WORDS = "one two three four"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA: Any = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}


@pytest.fixture
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=30
    )


def test_a_streamed_logprobs_answer_serves_the_same_unstreamed_request_with_its_logprobs(
    client: openai.OpenAI, stack: Stack, unique: str
) -> None:
    asked: Any = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": unique}],
        "temperature": 0,  # cacheable
        "logprobs": True,
        "top_logprobs": 2,
        "extra_body": {"mock": {"content": WORDS, "key": unique}},
    }
    chunks = list(client.chat.completions.create(stream=True, **asked))
    streamed = [
        token.token
        for c in chunks
        for choice in c.choices
        for token in ((choice.logprobs.content or []) if choice.logprobs else [])
    ]
    assert "".join(streamed) == WORDS
    raw = client.chat.completions.with_raw_response.create(**asked)
    assert raw.headers["x-gateway-cache"] == "hit"
    logprobs = raw.parse().choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [t.token for t in logprobs.content] == streamed
    assert all(len(t.top_logprobs) == 2 for t in logprobs.content)
    assert stack.mock_calls(unique) == 1  # the second answer came from the cache


def test_more_than_one_choice_on_a_zai_only_model_is_a_400_naming_n(
    stack: Stack, unique: str
) -> None:
    retrying = openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=2)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            retrying.chat.completions.create(
                model="glm-4.6",
                messages=[{"role": "user", "content": unique}],
                n=3,
                stream=stream,
                extra_body={"mock": {"key": unique}},
            )
        assert info.value.status_code == 400 and info.value.param == "n"
        assert info.value.code == "unsupported_parameter"
        assert info.value.response.headers["x-should-retry"] == "false"
    assert stack.mock_calls(unique) == 0  # never sent, not retried


def test_json_schema_on_zai_is_sent_as_json_object_named_in_a_header_and_not_cached(
    client: openai.OpenAI, stack: Stack, unique: str
) -> None:
    def ask() -> Any:
        return client.chat.completions.with_raw_response.create(
            model="glm-4.6",
            messages=[{"role": "user", "content": unique}],
            temperature=0,  # cacheable, were it not degraded
            response_format=JSON_SCHEMA,
            extra_body={"mock": {"echo_request": True, "key": unique}},
        )

    raw = ask()
    assert raw.headers["x-gateway-degraded-params"] == "response_format"
    content = raw.parse().choices[0].message.content
    sent = json.loads(content or "{}")  # the mock answers with what reached it
    assert sent["response_format"] == {"type": "json_object"}
    system = sent["messages"][0]
    assert system["role"] == "system"
    assert json.dumps(SCHEMA, separators=(",", ":"), sort_keys=True) in system["content"]
    again = ask()
    assert again.headers["x-gateway-cache"] == "miss"
    assert again.headers["x-gateway-degraded-params"] == "response_format"
    assert stack.mock_calls(unique) == 2


def test_a_streamed_json_schema_answer_on_zai_names_the_degradation_too(
    client: openai.OpenAI, unique: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="glm-4.6",
        messages=[{"role": "user", "content": unique}],
        response_format=JSON_SCHEMA,
        stream=True,
        extra_body={"mock": {"content": '{"city": "Oslo"}'}},
    )
    assert raw.headers["x-gateway-degraded-params"] == "response_format"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert json.loads(text) == {"city": "Oslo"}

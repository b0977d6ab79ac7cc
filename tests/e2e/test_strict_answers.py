"""Through the running stack, with the official client's raw responses: the answer relayed
from the provider, the cache hit and the stream each carry OpenAI's required fields."""

from __future__ import annotations

import json

import openai

from tests.support.clients import CLIENT_KEY
from tests.support.stack import Stack
from tests.unit.shared.wire.test_openai_shape import assert_chunk, assert_completion


def _client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=0)


def test_answers_carry_the_required_fields_on_every_path(stack: Stack, unique: str) -> None:
    client = _client(stack)
    ask = {"model": "mock-model", "messages": [{"role": "user", "content": unique}]}
    relayed = client.chat.completions.with_raw_response.create(**ask, temperature=0)
    assert relayed.headers["x-gateway-cache"] == "miss"
    assert_completion(json.loads(relayed.text))
    hit = client.chat.completions.with_raw_response.create(**ask, temperature=0)
    assert hit.headers["x-gateway-cache"] == "hit"
    assert_completion(json.loads(hit.text))

    with client.chat.completions.with_streaming_response.create(**ask, stream=True) as resp:
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    assert chunks
    for chunk in chunks:
        assert_chunk(chunk)

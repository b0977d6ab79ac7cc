"""Answers strict clients accept: every chat.completion and chat.completion.chunk the gateway
makes or relays carries the fields OpenAI's API reference marks required, on every path
(adapters, the stream assembler, replays, the cache's and the fallbacks' answers), and keeps
what the provider added."""

from __future__ import annotations

import copy
from typing import Any

from shared.config.settings import ProviderSettings
from shared.wire import openai_shape
from shared.wire.chunks import Assembler, from_completion, usage_chunk
from tests.support.shapes import assert_chunk, assert_completion
from workers.fallback import degraded_completion
from workers.providers.openai_compat import OpenAICompatAdapter
from workers.providers.zai import ZaiAdapter

# What a terse provider sends: no logprobs, no refusal, no object, a choice without a
# finish_reason, a field of its own.
TERSE: dict[str, Any] = {
    "id": "x-1",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    "provider_extra": {"kept": True},
}


def test_the_shape_fills_what_is_missing_and_keeps_what_is_there() -> None:
    got = openai_shape.completion(copy.deepcopy(TERSE))
    assert_completion(got)
    assert got["choices"][0]["logprobs"] is None
    assert got["choices"][0]["message"]["refusal"] is None
    assert got["choices"][0]["finish_reason"] == "stop"
    assert got["provider_extra"] == {"kept": True} and got["usage"] == TERSE["usage"]
    assert got["id"] == "x-1" and got["created"] == 1700000000
    # A provider's own values win over the defaults.
    full = copy.deepcopy(TERSE)
    full["choices"][0].update(finish_reason="length", logprobs={"content": []})
    full["choices"][0]["message"]["refusal"] = "no"
    got = openai_shape.completion(full)
    assert got["choices"][0]["finish_reason"] == "length"
    assert got["choices"][0]["logprobs"] == {"content": []}
    assert got["choices"][0]["message"]["refusal"] == "no"
    # Nothing at all still makes a valid object.
    assert_completion(openai_shape.completion({"choices": [{}]}, "fallback-model"))


def test_adapters_shape_answers_and_chunks() -> None:
    oai = OpenAICompatAdapter(
        ProviderSettings(name="o", type="openai", base_url="https://o.test/v1", max_connections=2)
    )
    zai = ZaiAdapter(
        ProviderSettings(name="z", type="zai", base_url="https://z.test/v4", max_connections=2)
    )
    for adapter in (oai, zai):
        assert_completion(adapter.normalize(copy.deepcopy(TERSE), "m"))
        chunk = adapter.normalize_chunk(
            {"id": "c", "created": 1, "model": "m", "choices": [{"delta": {"content": "h"}}]}, "m"
        )
        assert_chunk(chunk)
        assert chunk["choices"][0]["finish_reason"] is None


def test_the_assembled_answer_of_a_stream_is_complete() -> None:
    a = Assembler()
    a.feed(
        {
            "id": "c",
            "created": 5,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "a"}}],
        }
    )
    a.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert_completion(a.result())


def test_replays_and_the_usage_chunk_are_complete() -> None:
    answer = openai_shape.completion(copy.deepcopy(TERSE))
    chunks = from_completion(answer, include_usage=True)
    assert len(chunks) == 3
    for chunk in chunks:
        assert_chunk(chunk)
    # A cache entry stored by an older version (no shape) replays complete too.
    for chunk in from_completion(copy.deepcopy(TERSE), include_usage=False):
        assert_chunk(chunk)
    assert_chunk(usage_chunk(answer, answer["usage"]))


def test_fallback_answers_are_complete() -> None:
    assert_completion(openai_shape.completion(degraded_completion("busy", "m"), "m"))

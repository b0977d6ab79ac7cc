"""Streaming's pieces: SSE parsing, chunk assembly and replay, the adapters' streaming call."""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx

from shared.config.settings import ProviderSettings
from shared.wire.chunks import Assembler, from_completion
from workers.providers.base import ProviderCallError
from workers.providers.openai_compat import OpenAICompatAdapter
from workers.providers.sse import sse_data
from workers.providers.zai import ZaiAdapter

OAI = ProviderSettings(name="openai", type="openai", base_url="https://oai.test/v1", api_key="k")
ZAI = ProviderSettings(
    name="z-ai", type="zai", base_url="https://zai.test/api/paas/v4", api_key="k"
)
BODY = {"model": "public", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def sse_body(*events: Any) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def test_sse_data_joins_lines_and_skips_comments_and_fields() -> None:
    lines = [": ping", "event: x", "id: 3", "data: a", "data: b", "", "data:c", "", "data: tail"]
    assert list(sse_data(lines)) == ["a\nb", "c", "tail"]


def test_assembler_folds_content_tool_calls_and_usage() -> None:
    a = Assembler()
    a.feed(chunk({"role": "assistant", "content": ""}))
    a.feed(chunk({"content": "Hel"}))
    a.feed(chunk({"content": "lo"}))
    call = {
        "index": 0,
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a"'},
    }
    a.feed(chunk({"tool_calls": [call]}))
    a.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}))
    assert not a.finished
    a.feed(chunk({}, "tool_calls"))
    a.feed({**chunk({}), "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert a.finished
    out = a.result()
    assert out["object"] == "chat.completion" and out["id"] == "c1" and out["created"] == 7
    message = out["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {"prompt_tokens": 1, "completion_tokens": 2}


def test_replayed_chunks_assemble_back_to_the_completion() -> None:
    completion = {
        "id": "c9",
        "object": "chat.completion",
        "created": 3,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi there", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }
    chunks = from_completion(completion, include_usage=True)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == completion["usage"]
    a = Assembler()
    for c in chunks:
        a.feed(c)
    assert a.result() == completion
    assert "usage" not in from_completion(completion, include_usage=False)[-1]


@respx.mock
def test_openai_stream_emits_each_chunk_and_asks_for_usage() -> None:
    route = respx.post("https://oai.test/v1/chat/completions").respond(
        200,
        content=sse_body(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "a"}),
            chunk({"content": "b"}, "stop"),
            {**chunk({}), "choices": [], "usage": {"total_tokens": 3}},
            "[DONE]",
        ),
        headers={"Content-Type": "text/event-stream"},
    )
    seen: list[dict[str, Any]] = []
    out = OpenAICompatAdapter(OAI).stream(BODY, "gpt-x", 5, seen.append)
    sent = json.loads(route.calls[0].request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "gpt-x"
    assert len(seen) == 4
    assert out["choices"][0]["message"]["content"] == "ab"
    assert out["usage"] == {"total_tokens": 3}


@respx.mock
@pytest.mark.parametrize(
    ("events", "kind", "emitted"),
    [
        ((chunk({"content": "a"}),), "malformed", 1),  # cut: no finish_reason, no [DONE]
        ((chunk({"content": "a"}), {"error": {"message": "boom", "code": "x"}}), "http", 1),
        (("{not json",), "malformed", 0),
    ],
)
def test_broken_streams_raise_after_what_was_emitted(
    events: tuple[Any, ...], kind: str, emitted: int
) -> None:
    respx.post("https://oai.test/v1/chat/completions").respond(200, content=sse_body(*events))
    seen: list[dict[str, Any]] = []
    with pytest.raises(ProviderCallError) as info:
        OpenAICompatAdapter(OAI).stream(BODY, "gpt-x", 5, seen.append)
    assert info.value.kind == kind
    assert len(seen) == emitted


@respx.mock
def test_an_error_status_before_the_stream_is_the_usual_error() -> None:
    respx.post("https://oai.test/v1/chat/completions").respond(
        429, json={"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    )
    with pytest.raises(ProviderCallError) as info:
        OpenAICompatAdapter(OAI).stream(BODY, "gpt-x", 5, lambda c: None)
    assert info.value.status == 429 and info.value.code == "rate_limit_exceeded"


@respx.mock
def test_zai_stream_gets_the_openai_chunk_shape_and_refuses_sensitive() -> None:
    zchunk = {
        "id": "z",
        "created": 1,
        "model": "glm-4.6",
        "choices": [{"index": 0, "delta": {"content": "x"}}],
    }
    route = respx.post("https://zai.test/api/paas/v4/chat/completions").respond(
        200,
        content=sse_body(
            zchunk,
            {
                **zchunk,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"total_tokens": 2},
            },
            "[DONE]",
        ),
    )
    seen: list[dict[str, Any]] = []
    out = ZaiAdapter(ZAI).stream(
        {**BODY, "stream_options": {"include_usage": True}}, "glm-4.6", 5, seen.append
    )
    assert "stream_options" not in json.loads(route.calls[0].request.content)
    assert all(c["object"] == "chat.completion.chunk" for c in seen)
    assert out["usage"] == {"total_tokens": 2}

    blocked = {**zchunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "sensitive"}]}
    respx.post("https://zai.test/api/paas/v4/chat/completions").respond(
        200, content=sse_body(zchunk, blocked)
    )
    with pytest.raises(ProviderCallError) as info:
        ZaiAdapter(ZAI).stream(BODY, "glm-4.6", 5, lambda c: None)
    assert info.value.kind == "content_filter"

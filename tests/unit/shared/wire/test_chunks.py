"""The stream assembler keeps everything a non-streamed answer carries: token logprobs, and
tool calls told apart when a delta leaves out their ``index``."""

from __future__ import annotations

from typing import Any

from shared.wire.chunks import Assembler, from_completion


def token(text: str, logprob: float = -0.5) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []}


def chunk(
    delta: dict[str, Any],
    finish: str | None = None,
    logprobs: dict[str, Any] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [
            {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        ],
    }


def assemble(*chunks: dict[str, Any]) -> dict[str, Any]:
    a = Assembler()
    for c in chunks:
        a.feed(c)
    return a.result()


def test_logprobs_of_every_chunk_are_concatenated_into_the_answer() -> None:
    out = assemble(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}, logprobs={"content": [token("Hel")], "refusal": None}),
        chunk({"content": "lo"}, logprobs={"content": [token("lo", -0.25)], "refusal": None}),
        chunk({}, "stop"),
    )
    logprobs = out["choices"][0]["logprobs"]
    assert logprobs == {"content": [token("Hel"), token("lo", -0.25)], "refusal": None}


def test_refusal_logprobs_are_kept_apart_from_content_logprobs() -> None:
    out = assemble(
        chunk({"role": "assistant", "refusal": "I can"}, logprobs={"refusal": [token("I can")]}),
        chunk({"refusal": "not"}, logprobs={"content": None, "refusal": [token("not")]}),
        chunk({}, "stop"),
    )
    assert out["choices"][0]["message"]["refusal"] == "I cannot"
    assert out["choices"][0]["logprobs"] == {
        "content": None,
        "refusal": [token("I can"), token("not")],
    }


def test_logprobs_stay_with_their_own_choice() -> None:
    out = assemble(
        chunk({"content": "a"}, logprobs={"content": [token("a")]}, index=0),
        chunk({"content": "b"}, logprobs={"content": [token("b")]}, index=1),
        chunk({}, "stop", index=0),
        chunk({}, "stop", index=1),
    )
    assert [c["logprobs"]["content"] for c in out["choices"]] == [[token("a")], [token("b")]]


def test_an_answer_streamed_without_logprobs_has_none() -> None:
    out = assemble(chunk({"content": "hi"}), chunk({}, "stop"))
    assert out["choices"][0]["logprobs"] is None


def test_tool_call_deltas_without_index_are_told_apart_by_their_id() -> None:
    def call(cid: str | None, name: str, args: str) -> dict[str, Any]:
        fn = {"name": name, "arguments": args} if name else {"arguments": args}
        return {**({"id": cid, "type": "function"} if cid else {}), "function": fn}

    out = assemble(
        chunk({"tool_calls": [call("t1", "f", '{"a"')]}),
        chunk({"tool_calls": [call(None, "", ": 1}")]}),  # continues the call before it
        chunk({"tool_calls": [call("t2", "g", "{}")]}),  # a new id: a second call
        chunk({"tool_calls": [call("t1", "", "")]}),  # a known id again: still the first
        chunk({}, "tool_calls"),
    )
    calls = out["choices"][0]["message"]["tool_calls"]
    assert calls == [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]


def test_tool_call_deltas_with_an_index_still_follow_it() -> None:
    first = {"index": 1, "id": "t2", "type": "function", "function": {"name": "g"}}
    out = assemble(
        chunk({"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f"}}]}),
        chunk({"tool_calls": [first]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "[]"}}]}),
        chunk({}, "tool_calls"),
    )
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("t1", "{}"), ("t2", "[]")]


def test_a_replayed_answer_carries_its_logprobs_and_assembles_back() -> None:
    completion: dict[str, Any] = {
        "id": "c9",
        "object": "chat.completion",
        "created": 3,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi there", "refusal": None},
                "logprobs": {"content": [token("hi"), token(" there")], "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }
    chunks = from_completion(completion, include_usage=True)
    assert chunks[0]["choices"][0]["logprobs"] == completion["choices"][0]["logprobs"]
    assert assemble(*chunks) == completion

"""A chat completion as a Response object: a table of completions and the output items,
status and usage each gives; every Response built (answers, queued, in progress, failed,
cancelled) is one OpenAI's own SDK validates; ids are the same when built again; and a
function call round trip (the Response's output fed back with the function's result, as
items or through a stored conversation) gives the chat history a provider expects."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openai._models import construct_type
from openai.types.responses import Response

from shared.wire.chat_schema import ChatCompletionSchema
from shared.wire.responses import envelope
from shared.wire.responses.request import ResponsesRequest, to_chat
from shared.wire.responses.response import from_chat

RID = "resp_abc"
CREATED = 1_760_000_000.0
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}
PLAIN = to_chat({"model": "glm", "input": "hi"})
# A request with every echoed field set, so that the SDK validates the echo of each.
FULL = to_chat(
    {
        "model": "glm",
        "input": "hi",
        "instructions": "Be brief.",
        "tools": [WEATHER, {**WEATHER, "name": "get_time", "strict": False}],
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "get_time"}],
        },
        "text": {
            "format": {"type": "json_schema", "name": "n", "schema": SCHEMA, "strict": True},
            "verbosity": "low",
        },
        "temperature": 0.5,
        "top_p": 0.9,
        "max_output_tokens": 100,
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "metadata": {"k": "v"},
        "user": "u",
        "previous_response_id": "resp_prev",
        "store": False,
        "background": True,
    },
    previous=[],
)


def completion(
    message: dict[str, Any], finish: str | None = "stop", usage: Any = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "glm-4.6",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_item(index: int, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": f"msg_abc_{index}",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def call_item(
    index: int, call_id: str, name: str, arguments: str, status: str = "completed"
) -> Any:
    return {
        "id": f"fc_abc_{index}",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def tool_call(call_id: Any, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
RESPONSES_USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 15,
}

# (completion, output items, status, incomplete reason, usage)
ANSWERS = [
    pytest.param(
        completion({"content": "Hello."}, usage=USAGE),
        [text_item(0, "Hello.")],
        "completed",
        None,
        RESPONSES_USAGE,
        id="text",
    ),
    pytest.param(
        completion(
            {"content": "42", "reasoning_content": "6 times 7"},
            usage={
                **USAGE,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        ),
        [
            {
                "id": "rs_abc_0",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "6 times 7"}],
            },
            text_item(1, "42"),
        ],
        "completed",
        None,
        {
            **RESPONSES_USAGE,
            "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 3},
        },
        id="reasoning-content-then-text-cached-and-reasoning-tokens",
    ),
    pytest.param(
        completion(
            {
                "content": "Checking.",
                "tool_calls": [
                    tool_call("call_1", "get_weather", '{"city":"Paris"}'),
                    tool_call("call_2", "get_weather", '{"city":"Oslo"}'),
                ],
            },
            finish="tool_calls",
        ),
        [
            text_item(0, "Checking."),
            call_item(1, "call_1", "get_weather", '{"city":"Paris"}'),
            call_item(2, "call_2", "get_weather", '{"city":"Oslo"}'),
        ],
        "completed",
        None,
        None,
        id="text-and-two-calls-no-usage",
    ),
    pytest.param(
        completion(
            {"content": None, "tool_calls": [tool_call("call_1", "get_time", "{}")]}, "tool_calls"
        ),
        [call_item(0, "call_1", "get_time", "{}")],
        "completed",
        None,
        None,
        id="calls-only-no-message-item",
    ),
    pytest.param(
        completion(
            {"content": None, "tool_calls": [tool_call(None, "get_time", {"tz": "UTC"})]},
            "tool_calls",
        ),
        [call_item(0, "call_abc_0", "get_time", '{"tz": "UTC"}')],
        "completed",
        None,
        None,
        id="call-without-id-arguments-as-object",
    ),
    pytest.param(
        completion({"content": "Once upon a"}, "length", USAGE),
        [text_item(0, "Once upon a", "incomplete")],
        "incomplete",
        "max_output_tokens",
        RESPONSES_USAGE,
        id="length-is-incomplete",
    ),
    pytest.param(
        completion({"content": None, "reasoning_content": "Let me think"}, "length"),
        [
            {
                "id": "rs_abc_0",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "Let me think"}],
            }
        ],
        "incomplete",
        "max_output_tokens",
        None,
        id="cut-while-reasoning-only-reasoning",
    ),
    pytest.param(
        completion({"content": ""}, "content_filter"),
        [text_item(0, "", "incomplete")],
        "incomplete",
        "content_filter",
        None,
        id="content-filter",
    ),
    pytest.param(
        completion({"content": "partial"}, "sensitive"),
        [text_item(0, "partial", "incomplete")],
        "incomplete",
        "content_filter",
        None,
        id="zai-sensitive",
    ),
    pytest.param(
        completion({"content": None, "refusal": "I can't help with that."}),
        [
            {
                "id": "msg_abc_0",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "refusal", "refusal": "I can't help with that."}],
            }
        ],
        "completed",
        None,
        None,
        id="refusal",
    ),
    pytest.param(
        completion({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        [text_item(0, "ab")],
        "completed",
        None,
        None,
        id="content-parts-joined",
    ),
    pytest.param(
        completion({"content": "x", "reasoning": "via reasoning"}, None),
        [
            {
                "id": "rs_abc_0",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "via reasoning"}],
            },
            text_item(1, "x"),
        ],
        "completed",
        None,
        None,
        id="reasoning-field-no-finish-reason",
    ),
    pytest.param(
        {"id": "x", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": True}},
        [text_item(0, "")],
        "completed",
        None,
        {
            **RESPONSES_USAGE,
            "input_tokens": 3,
            "output_tokens": 0,
            "total_tokens": 3,
        },
        id="no-choices-odd-usage",
    ),
    pytest.param(
        {"choices": [{"message": "not an object", "finish_reason": 7}], "usage": []},
        [text_item(0, "")],
        "completed",
        None,
        None,
        id="malformed-message",
    ),
]


@pytest.mark.parametrize(("chat", "items", "status", "reason", "usage"), ANSWERS)
def test_a_completion_becomes_this_response(
    chat: dict[str, Any], items: list[Any], status: str, reason: str | None, usage: Any
) -> None:
    sent = copy.deepcopy(chat)
    got = from_chat(
        chat, response_id=RID, created_at=CREATED, request=PLAIN, completed_at=CREATED + 2
    )
    assert chat == sent, "the completion is not changed"
    assert got["output"] == items
    assert got["status"] == status
    assert got["incomplete_details"] == (None if status == "completed" else {"reason": reason})
    assert got["completed_at"] == (CREATED + 2 if status == "completed" else None)
    assert got["usage"] == usage
    assert got["id"] == RID and got["object"] == "response" and got["error"] is None
    assert got["model"] == (chat.get("model") or "glm")
    parsed = Response.model_validate(got)
    texts = [
        p["text"] for i in items if i["type"] == "message" for p in i["content"] if "text" in p
    ]
    assert parsed.output_text == "".join(texts)
    # Built again (a poll, a replay, another process): the same object, the same ids.
    assert (
        from_chat(
            chat, response_id=RID, created_at=CREATED, request=PLAIN, completed_at=CREATED + 2
        )
        == got
    )


def test_the_response_echoes_the_request() -> None:
    got = from_chat(
        completion({"content": "{}"}), response_id=RID, created_at=CREATED, request=FULL
    )
    Response.model_validate(got)
    echoed = {k: got[k] for k in FULL.echo() if k != "model"}
    assert echoed == {k: v for k, v in FULL.echo().items() if k != "model"}
    assert got["model"] == "glm-4.6", "the model that answered"
    assert got["tools"][1] == {**WEATHER, "name": "get_time", "strict": False}
    assert got["truncation"] == "disabled" and got["reasoning"] == {
        "effort": "high",
        "summary": "auto",
    }
    assert "output_text" not in got, "output_text is the SDKs' own"


def test_a_stored_echo_builds_the_same_response() -> None:
    stored = json.loads(json.dumps(FULL.echo()))
    chat = completion({"content": "hi"}, usage=USAGE)
    assert from_chat(chat, response_id=RID, created_at=CREATED, request=stored) == from_chat(
        chat, response_id=RID, created_at=CREATED, request=FULL
    )
    assert envelope.queued(stored, response_id=RID, created_at=CREATED) == envelope.queued(
        FULL, response_id=RID, created_at=CREATED
    )


def test_a_plain_request_echoes_the_defaults() -> None:
    got = envelope.queued(PLAIN, response_id=RID, created_at=CREATED)
    assert {
        k: got[k] for k in ("tools", "tool_choice", "text", "metadata", "store", "background")
    } == {
        "tools": [],
        "tool_choice": "auto",
        "text": {"format": {"type": "text"}},
        "metadata": {},
        "store": True,
        "background": False,
    }
    assert (
        got["parallel_tool_calls"] is True and got["temperature"] is None and got["top_p"] is None
    )
    assert got["instructions"] is None and got["previous_response_id"] is None


LIFECYCLE = [
    pytest.param(envelope.queued, {}, "queued", id="queued"),
    pytest.param(envelope.in_progress, {}, "in_progress", id="in-progress"),
    pytest.param(envelope.cancelled, {}, "cancelled", id="cancelled"),
    pytest.param(
        envelope.failed,
        {"code": "server_error", "message": "the provider failed"},
        "failed",
        id="failed",
    ),
]


@pytest.mark.parametrize("request_", [PLAIN, FULL], ids=["plain", "full"])
@pytest.mark.parametrize(("build", "kwargs", "status"), LIFECYCLE)
def test_responses_without_an_answer(
    request_: ResponsesRequest, build: Any, kwargs: dict[str, Any], status: str
) -> None:
    got = build(request_, response_id=RID, created_at=CREATED, **kwargs)
    assert got["status"] == status and got["output"] == [] and got["usage"] is None
    assert got["completed_at"] is None and got["incomplete_details"] is None
    assert got["error"] == (
        {"code": kwargs["code"], "message": kwargs["message"]} if kwargs else None
    )
    assert got["model"] == "glm"
    parsed = Response.model_validate(got)
    assert parsed.output_text == ""


def test_a_failed_response_keeps_the_gateways_code_and_what_was_produced() -> None:
    produced = from_chat(
        completion({"content": "half"}), response_id=RID, created_at=CREATED, request=PLAIN
    )
    got = envelope.failed(
        PLAIN,
        response_id=RID,
        created_at=CREATED,
        code="stream_interrupted",
        message="the worker was lost mid-stream",
        output=produced["output"],
        model="glm-4.6",
    )
    assert got["error"] == {
        "code": "stream_interrupted",
        "message": "the worker was lost mid-stream",
    }
    assert got["output"] == produced["output"] and got["model"] == "glm-4.6"
    # The SDK's client parses answers without validating them (unless built with strict
    # response validation, which knows only OpenAI's codes): the gateway's code reaches it.
    parsed = construct_type(type_=Response, value=got)
    assert isinstance(parsed, Response) and parsed.error is not None
    assert str(parsed.error.code) == "stream_interrupted" and parsed.output_text == "half"


def test_a_status_given_overrides_the_finish_reason() -> None:
    got = from_chat(
        completion({"content": "par"}, "length"),
        response_id=RID,
        created_at=CREATED,
        request=PLAIN,
        completed_at=CREATED,
        status="cancelled",
    )
    assert got["status"] == "cancelled" and got["incomplete_details"] is None
    assert got["completed_at"] is None and got["output"] == [text_item(0, "par", "incomplete")]
    Response.model_validate(got)


def test_ids_differ_between_responses() -> None:
    chat = completion({"content": "x", "tool_calls": [tool_call("c", "f", "{}")]})
    one = from_chat(chat, response_id="resp_one", created_at=CREATED, request=PLAIN)
    two = from_chat(chat, response_id="resp_two", created_at=CREATED, request=PLAIN)
    ids_one = {item["id"] for item in one["output"]}
    assert len(ids_one) == 2 and not ids_one & {item["id"] for item in two["output"]}


# -- a function call round trip ---------------------------------------------------------------

FIRST_TURN = {
    "model": "glm",
    "instructions": "Be brief.",
    "input": "Weather in Paris and Oslo?",
    "tools": [WEATHER],
}
CALLS = completion(
    {
        "content": "Checking both.",
        "reasoning_content": "Two cities, two calls.",
        "tool_calls": [
            tool_call("call_p", "get_weather", '{"city":"Paris"}'),
            tool_call("call_o", "get_weather", '{"city":"Oslo"}'),
        ],
    },
    "tool_calls",
)
RESULTS = [
    {"type": "function_call_output", "call_id": "call_p", "output": "18C"},
    {"type": "function_call_output", "call_id": "call_o", "output": "-3C"},
]
HISTORY = [
    {"role": "user", "content": "Weather in Paris and Oslo?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            tool_call("call_p", "get_weather", '{"city":"Paris"}'),
            tool_call("call_o", "get_weather", '{"city":"Oslo"}'),
        ],
    },
    {"role": "tool", "tool_call_id": "call_p", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_o", "content": "-3C"},
]


def _first_response() -> tuple[ResponsesRequest, dict[str, Any]]:
    first = to_chat(FIRST_TURN)
    return first, from_chat(CALLS, response_id=RID, created_at=CREATED, request=first)


def test_round_trip_with_the_output_sent_back_as_items() -> None:
    _, response = _first_response()
    # What a Python client sends back: the SDK's output items, serialized as the SDK does.
    output = [
        item.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for item in Response.model_validate(response).output
    ]
    second = to_chat(
        {
            **FIRST_TURN,
            "input": [{"role": "user", "content": FIRST_TURN["input"]}, *output, *RESULTS],
        }
    )
    assert second.chat["messages"] == [{"role": "system", "content": "Be brief."}, *HISTORY]
    ChatCompletionSchema().load(second.chat)


def test_round_trip_through_the_stored_conversation() -> None:
    first, response = _first_response()
    stored = json.loads(json.dumps([*first.input_items, *response["output"]]))
    second = to_chat(
        {"model": "glm", "input": RESULTS, "tools": [WEATHER], "previous_response_id": RID},
        previous=stored,
    )
    # The first turn's instructions are not carried over (OpenAI's rule): none were given now.
    assert second.chat["messages"] == HISTORY
    ChatCompletionSchema().load(second.chat)
    # Without the results, the stored calls are unanswered: a 400 at the door, not the provider's.
    with pytest.raises(
        Exception, match="no function_call_output answers the function_call `call_p`"
    ):
        to_chat({"input": "and now?", "previous_response_id": RID}, previous=stored)

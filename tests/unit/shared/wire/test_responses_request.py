"""A Responses request body as the chat body the providers get: a table of bodies and the
chat body each becomes, a table of refusals (the 400's param and message), shapes fuzzed to
show that a bad body is always a 400 naming a field and never a crash, and every chat body
made is one the chat schema accepts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.errors import InvalidRequest
from shared.wire.chat_schema import ChatCompletionSchema
from shared.wire.responses.request import ResponsesRequest, to_chat

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
CHAT_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": WEATHER["parameters"],
        "strict": True,
    },
}
TIME = {"type": "function", "name": "get_time"}
CHAT_TIME = {"type": "function", "function": {"name": "get_time"}}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(call_id: str, name: str = "get_weather", args: Any = '{"city":"Paris"}') -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}


def chat_call(call_id: str, name: str = "get_weather", args: str = '{"city":"Paris"}') -> Any:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def output(call_id: str, out: Any = "18C") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": out}


# (body, previous items, the chat body expected)
CASES = [
    pytest.param(
        {"model": "m", "input": "hi"},
        None,
        {"model": "m", "messages": [user("hi")]},
        id="string-input",
    ),
    pytest.param(
        {"input": "hi"}, None, {"messages": [user("hi")]}, id="no-model-left-to-the-chat-parser"
    ),
    pytest.param(
        {"input": "hi", "instructions": "Be brief."},
        None,
        {"messages": [{"role": "system", "content": "Be brief."}, user("hi")]},
        id="instructions-first-system-message",
    ),
    pytest.param(
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hi"}],
                }
            ]
        },
        None,
        {"messages": [user("hi")]},
        id="one-text-part-is-a-string",
    ),
    pytest.param(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,AAA",
                            "detail": "original",
                        },
                    ],
                }
            ]
        },
        None,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x/cat.png", "detail": "low"},
                        },
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    ],
                }
            ]
        },
        id="text-and-images",
    ),
    pytest.param(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVB",
                            "filename": "a.pdf",
                        }
                    ],
                }
            ]
        },
        None,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "file",
                            "file": {
                                "file_data": "data:application/pdf;base64,JVB",
                                "filename": "a.pdf",
                            },
                        }
                    ],
                }
            ]
        },
        id="file-data",
    ),
    pytest.param(
        {
            "input": [
                {"role": "developer", "content": "Answer in French."},
                {
                    "role": "system",
                    "content": [
                        {"type": "input_text", "text": "A"},
                        {"type": "input_text", "text": "B"},
                    ],
                },
                user("hi"),
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "Bon", "annotations": []},
                        {"type": "output_text", "text": "jour", "annotations": []},
                    ],
                },
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "Non."}]},
            ]
        },
        None,
        {
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
                },
                user("hi"),
                {"role": "assistant", "content": "Bonjour"},
                {"role": "assistant", "content": "Non."},
            ]
        },
        id="roles-developer-as-system-assistant-history-joined",
    ),
    pytest.param(
        {
            "input": [
                user("weather?"),
                call("c1"),
                call("c2", args='{"city":"Oslo"}'),
                output("c1"),
                output("c2", "-3C"),
            ]
        },
        None,
        {
            "messages": [
                user("weather?"),
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [chat_call("c1"), chat_call("c2", args='{"city":"Oslo"}')],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "18C"},
                {"role": "tool", "tool_call_id": "c2", "content": "-3C"},
            ]
        },
        id="function-calls-grouped-outputs-as-tool-messages",
    ),
    pytest.param(
        {
            "input": [
                user("weather?"),
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "think"}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {
                    "type": "reasoning",
                    "id": "rs_2",
                    "summary": [{"type": "summary_text", "text": "s"}],
                },
                call("c1"),
                output(
                    "c1",
                    [{"type": "input_text", "text": "18"}, {"type": "input_text", "text": "C"}],
                ),
                {"role": "assistant", "content": "18C in Paris."},
            ]
        },
        None,
        {
            "messages": [
                user("weather?"),
                {"role": "assistant", "content": "Checking.", "tool_calls": [chat_call("c1")]},
                {"role": "tool", "tool_call_id": "c1", "content": "18C"},
                {"role": "assistant", "content": "18C in Paris."},
            ]
        },
        id="reasoning-dropped-calls-join-the-assistant-text",
    ),
    pytest.param(
        {"input": [output("c1")], "instructions": "Be brief."},
        [
            user("weather?"),
            {"type": "reasoning", "id": "rs_x", "summary": []},
            {**call("c1"), "id": "fc_x", "status": "completed"},
        ],
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                user("weather?"),
                {"role": "assistant", "content": None, "tool_calls": [chat_call("c1")]},
                {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            ]
        },
        id="previous-conversation-prepended-after-instructions",
    ),
    pytest.param(
        {
            "input": "hi",
            "tools": [WEATHER, TIME],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
        None,
        {
            "messages": [user("hi")],
            "tools": [CHAT_WEATHER, CHAT_TIME],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
        id="tools-nested-choice-parallel",
    ),
    pytest.param(
        {"input": "hi", "tools": [WEATHER, TIME]},
        None,
        {"messages": [user("hi")], "tools": [CHAT_WEATHER, CHAT_TIME], "tool_choice": "auto"},
        id="tool-choice-defaults-to-auto",
    ),
    pytest.param(
        {
            "input": "hi",
            "tools": [WEATHER, TIME],
            "tool_choice": {"type": "function", "name": "get_time"},
        },
        None,
        {
            "messages": [user("hi")],
            "tools": [CHAT_WEATHER, CHAT_TIME],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        },
        id="tool-choice-function",
    ),
    pytest.param(
        {
            "input": "hi",
            "tools": [WEATHER, TIME],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_time"}],
            },
        },
        None,
        {"messages": [user("hi")], "tools": [CHAT_TIME], "tool_choice": "required"},
        id="allowed-tools-as-a-subset",
    ),
    pytest.param(
        {"input": "hi", "tool_choice": "none", "parallel_tool_calls": True, "tools": []},
        None,
        {"messages": [user("hi")]},
        id="no-tools-no-tool-fields",
    ),
    pytest.param(
        {
            "input": "hi",
            "text": {
                "format": {"type": "json_schema", "name": "n", "schema": SCHEMA, "strict": True},
                "verbosity": "low",
            },
        },
        None,
        {
            "messages": [user("hi")],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": SCHEMA, "strict": True},
            },
            "verbosity": "low",
        },
        id="json-schema-and-verbosity",
    ),
    pytest.param(
        {"input": "hi", "text": {"format": {"type": "json_object"}}},
        None,
        {"messages": [user("hi")], "response_format": {"type": "json_object"}},
        id="json-object",
    ),
    pytest.param(
        {"input": "hi", "text": {"format": {"type": "text"}}},
        None,
        {"messages": [user("hi")]},
        id="text-format-left-out",
    ),
    pytest.param(
        {
            "input": "hi",
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 1,
            "reasoning": {"effort": "high", "summary": "auto"},
            "user": "u-1",
            "metadata": {"team": "a"},
            "store": False,
            "background": True,
            "previous_response_id": None,
        },
        None,
        {
            "messages": [user("hi")],
            "max_tokens": 300,
            "temperature": 0.2,
            "top_p": 1.0,
            "reasoning_effort": "high",
            "user": "u-1",
        },
        id="sampling-and-limits-door-fields-not-sent",
    ),
    pytest.param(
        {"input": "hi", "stream": True, "gateway": {"priority": "batch"}},
        None,
        {
            "messages": [user("hi")],
            "stream": True,
            "stream_options": {"include_usage": True},
            "gateway": {"priority": "batch"},
        },
        id="stream-with-usage-gateway-extension-passed-on",
    ),
    pytest.param(
        {
            "input": "hi",
            "include": ["reasoning.encrypted_content"],
            "truncation": "auto",
            "service_tier": "flex",
            "prompt_cache_key": "k",
            "prompt_cache_retention": "24h",
            "safety_identifier": "s",
            "stream_options": {"include_obfuscation": False},
            "top_logprobs": 3,
            "max_tool_calls": 2,
            "conversation": None,
            "prompt": None,
            "reasoning": {"effort": None},
        },
        None,
        {"messages": [user("hi")]},
        id="ignored-fields-and-null-refused-ones",
    ),
]


@pytest.mark.parametrize(("body", "previous", "chat"), CASES)
def test_a_request_becomes_this_chat_body(
    body: dict[str, Any], previous: Any, chat: dict[str, Any]
) -> None:
    sent = copy.deepcopy(body)
    got = to_chat(body, previous)
    assert got.chat == chat
    assert body == sent, "the client's body is not changed"
    # The chat body is one the chat route's schema accepts (the door hands it to the chat parser).
    ChatCompletionSchema().load(got.chat)


def test_what_the_door_keeps_and_echoes() -> None:
    got = to_chat(
        {
            "model": "m",
            "input": "hi",
            "instructions": "Be brief.",
            "tools": [WEATHER, TIME],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "n", "schema": SCHEMA}},
            "temperature": 1,
            "max_output_tokens": 50,
            "reasoning": {"generate_summary": "concise"},
            "metadata": {"k": "v"},
            "previous_response_id": "resp_prev",
            "store": False,
            "background": True,
            "stream": True,
        },
        previous=[],
    )
    assert got.input_items == [{"type": "message", "role": "user", "content": "hi"}]
    assert (got.store, got.background, got.stream) == (False, True, True)
    assert got.echo() == {
        "model": "m",
        "instructions": "Be brief.",
        "tools": [
            {**WEATHER},
            {
                "type": "function",
                "name": "get_time",
                "description": None,
                "parameters": None,
                "strict": None,
            },
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "n", "schema": SCHEMA}},
        "temperature": 1.0,
        "top_p": None,
        "max_output_tokens": 50,
        "parallel_tool_calls": True,
        "reasoning": {"effort": None, "summary": "concise"},
        "metadata": {"k": "v"},
        "user": None,
        "previous_response_id": "resp_prev",
        "store": False,
        "background": True,
    }


def test_defaults_of_the_door_fields() -> None:
    got = to_chat({"input": [user("hi")]})
    assert isinstance(got, ResponsesRequest)
    assert (got.store, got.background, got.stream) == (True, False, False)
    assert got.input_items == [user("hi")]
    assert got.echo()["tool_choice"] == "auto" and got.echo()["text"] == {
        "format": {"type": "text"}
    }
    assert got.metadata == {} and got.previous_response_id is None


# (body, previous items, the 400's param, a fragment of its message, its code or None)
REFUSALS = [
    pytest.param(
        {"input": "hi", "tools": [{"type": "web_search"}]},
        None,
        "tools[0].type",
        "`web_search` tools are not supported",
        "unsupported_parameter",
        id="web-search",
    ),
    pytest.param(
        {"input": "hi", "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["v"]}]},
        None,
        "tools[1].type",
        "`file_search`",
        "unsupported_parameter",
        id="file-search",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "computer_use_preview"}]},
        None,
        "tools[0].type",
        "`computer_use_preview`",
        "unsupported_parameter",
        id="computer-use",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
        None,
        "tools[0].type",
        "`code_interpreter`",
        "unsupported_parameter",
        id="code-interpreter",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "image_generation"}]},
        None,
        "tools[0].type",
        "`image_generation`",
        "unsupported_parameter",
        id="image-generation",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "mcp", "server_label": "x"}]},
        None,
        "tools[0].type",
        "`mcp`",
        "unsupported_parameter",
        id="mcp",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "custom", "name": "x"}]},
        None,
        "tools[0].type",
        "`custom`",
        "unsupported_parameter",
        id="custom-tool",
    ),
    pytest.param(
        {"input": "hi", "conversation": "conv_1"},
        None,
        "conversation",
        "previous_response_id",
        "unsupported_parameter",
        id="conversation",
    ),
    pytest.param(
        {"input": "hi", "prompt": {"id": "pmpt_1"}},
        None,
        "prompt",
        "prompt templates",
        "unsupported_parameter",
        id="prompt",
    ),
    pytest.param(
        {"input": "hi", "moderation": {"model": "omni"}},
        None,
        "moderation",
        "moderation",
        "unsupported_parameter",
        id="moderation",
    ),
    pytest.param(
        {"input": "hi", "frequency_penalty": 1},
        None,
        "frequency_penalty",
        "unknown parameter",
        "unknown_parameter",
        id="unknown-field",
    ),
    pytest.param(
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        None,
        "input[0].content[0].file_id",
        "image_url",
        "unsupported_parameter",
        id="image-file-id",
    ),
    pytest.param(
        {
            "input": [
                {"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}
            ]
        },
        None,
        "input[0].content[0].file_url",
        "file_data",
        "unsupported_parameter",
        id="file-url",
    ),
    pytest.param(
        {
            "input": [
                {"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}
            ]
        },
        None,
        "input[0].content[0].type",
        "text only",
        None,
        id="image-in-system",
    ),
    pytest.param(
        {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
        None,
        "input[0].content[0].type",
        "only an assistant",
        None,
        id="output-text-from-user",
    ),
    pytest.param(
        {"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}]},
        None,
        "input[0].content[0].type",
        "not a part of an assistant",
        None,
        id="image-from-assistant",
    ),
    pytest.param(
        {"input": [{"role": "tool", "content": "x"}]},
        None,
        "input[0].role",
        "`tool` is not one of",
        None,
        id="chat-tool-role",
    ),
    pytest.param(
        {"input": [{"role": "user"}]},
        None,
        "input[0].content",
        "needs content",
        None,
        id="message-without-content",
    ),
    pytest.param(
        {"input": [user("a"), {"type": "function_call", "name": "f", "arguments": "{}"}]},
        None,
        "input[1].call_id",
        "expected a string",
        None,
        id="call-without-call-id",
    ),
    pytest.param(
        {"input": [call("c1", args={"city": "x"}), output("c1")]},
        None,
        "input[0].arguments",
        "expected a string",
        None,
        id="arguments-not-a-string",
    ),
    pytest.param(
        {"input": [user("a"), output("c9")]},
        None,
        "input[1].call_id",
        "no function_call with call_id `c9`",
        None,
        id="output-without-call",
    ),
    pytest.param(
        {"input": [user("a"), call("c1"), output("c1"), output("c1")]},
        None,
        "input[3].call_id",
        "answered already",
        None,
        id="output-twice",
    ),
    pytest.param(
        {"input": [user("a"), call("c1"), call("c1"), output("c1")]},
        None,
        "input[2].call_id",
        "is the call_id of input[1]",
        None,
        id="call-id-twice",
    ),
    pytest.param(
        {"input": [user("a"), call("c1")]},
        None,
        "input[1]",
        "no function_call_output answers",
        None,
        id="call-without-output",
    ),
    pytest.param(
        {"input": [user("next")]},
        [user("a"), call("c1")],
        "previous_response_id",
        "no function_call_output answers",
        None,
        id="stored-call-without-output",
    ),
    pytest.param(
        {"input": [call("c1"), output("c1", [{"type": "input_image", "image_url": "u"}])]},
        None,
        "input[1].output[0].type",
        "text only",
        None,
        id="image-in-tool-output",
    ),
    pytest.param(
        {"input": [{"type": "web_search_call", "id": "ws_1"}]},
        None,
        "input[0].type",
        "`web_search_call` items are not supported",
        "unsupported_parameter",
        id="built-in-call-item",
    ),
    pytest.param(
        {"input": [{"type": "item_reference", "id": "msg_1"}]},
        None,
        "input[0]",
        "item references",
        "unsupported_parameter",
        id="item-reference",
    ),
    pytest.param(
        {"input": [{"content": "x"}]},
        None,
        "input[0].type",
        "needs a type",
        None,
        id="item-without-type-or-role",
    ),
    pytest.param(
        {"input": "hi", "tool_choice": "required"},
        None,
        "tool_choice",
        "needs at least one tool",
        None,
        id="required-without-tools",
    ),
    pytest.param(
        {"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
        None,
        "tool_choice.name",
        "no function `nope`",
        None,
        id="choice-of-unknown-function",
    ),
    pytest.param(
        {"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "web_search_preview"}},
        None,
        "tool_choice.type",
        "`web_search_preview`",
        "unsupported_parameter",
        id="hosted-tool-choice",
    ),
    pytest.param(
        {
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "mcp", "server_label": "x"}],
            },
        },
        None,
        "tool_choice.tools[0].type",
        "`mcp`",
        "unsupported_parameter",
        id="allowed-hosted-tool",
    ),
    pytest.param(
        {"input": "hi", "tools": [WEATHER, WEATHER]},
        None,
        "tools[1].name",
        "already the name of tools[0]",
        None,
        id="same-function-twice",
    ),
    pytest.param(
        {"input": "hi", "tools": [{"type": "function", "name": "has space"}]},
        None,
        "tools[0].name",
        "letters, digits",
        None,
        id="bad-function-name",
    ),
    pytest.param(
        {"input": "hi", "text": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        None,
        "text.format.name",
        "expected a string",
        None,
        id="schema-without-name",
    ),
    pytest.param(
        {"input": "hi", "text": {"format": {"type": "json_schema", "name": "n"}}},
        None,
        "text.format.schema",
        "expected an object",
        None,
        id="schema-without-schema",
    ),
    pytest.param(
        {"input": "hi", "text": {"format": {"type": "grammar"}}},
        None,
        "text.format.type",
        "`grammar` is not one of",
        None,
        id="unknown-format",
    ),
    pytest.param(
        {"input": "hi", "temperature": 3},
        None,
        "temperature",
        "between 0 and 2",
        None,
        id="temperature-range",
    ),
    pytest.param(
        {"input": "hi", "top_p": "1"}, None, "top_p", "expected a number", None, id="top-p-type"
    ),
    pytest.param(
        {"input": "hi", "max_output_tokens": 0},
        None,
        "max_output_tokens",
        "at least 1",
        None,
        id="max-output-tokens-range",
    ),
    pytest.param(
        {"input": "hi", "max_output_tokens": True},
        None,
        "max_output_tokens",
        "expected an integer",
        None,
        id="max-output-tokens-bool",
    ),
    pytest.param(
        {"input": "hi", "reasoning": {"effort": "extreme"}},
        None,
        "reasoning.effort",
        "`extreme` is not one of",
        None,
        id="reasoning-effort",
    ),
    pytest.param(
        {"input": "hi", "metadata": {"k": 1}},
        None,
        "metadata.k",
        "expected a string",
        None,
        id="metadata-value",
    ),
    pytest.param(
        {"input": "hi", "metadata": {str(i): "v" for i in range(17)}},
        None,
        "metadata",
        "at most 16",
        None,
        id="metadata-size",
    ),
    pytest.param(
        {"input": "hi", "store": "yes"}, None, "store", "expected a boolean", None, id="store-type"
    ),
    pytest.param({"input": 3}, None, "input", "a string or an array", None, id="input-type"),
    pytest.param({}, None, "input", "give input", None, id="no-input"),
    pytest.param(
        {"input": "hi", "model": ""}, None, "model", "must not be empty", None, id="empty-model"
    ),
]


@pytest.mark.parametrize(("body", "previous", "param", "fragment", "code"), REFUSALS)
def test_a_request_is_refused_naming_the_field(
    body: dict[str, Any], previous: Any, param: str, fragment: str, code: str | None
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat(body, previous)
    err = caught.value
    assert err.status == 400 and err.param == param
    assert fragment in err.message and err.message.startswith(f"{param}: ")
    assert err.code == (code or "invalid_request")


def test_a_body_that_is_not_an_object_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat(["input"])
    assert caught.value.param is None and "JSON object" in caught.value.message


# Values of every JSON kind, put in every place of a valid body in turn.
_JUNK: list[Any] = [
    None,
    True,
    0,
    -1,
    2.5,
    "",
    "x",
    [],
    [None],
    [{}],
    {},
    {"type": None},
    {"type": 1},
]
_VALID: dict[str, Any] = {
    "model": "m",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "u"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        call("c1"),
        output("c1"),
    ],
    "instructions": "x",
    "tools": [WEATHER],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": SCHEMA}},
    "reasoning": {"effort": "low"},
    "metadata": {"k": "v"},
    "temperature": 1,
}


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _places(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _places(sub, (*path, i))
    return found


def _with(body: dict[str, Any], path: tuple[Any, ...], junk: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(junk)
    return out


def test_bad_shapes_anywhere_are_400s_or_accepted_never_a_crash() -> None:
    to_chat(_VALID)  # the body itself is valid
    places = _places(_VALID)
    assert len(places) > 40
    refused = 0
    for path in places:
        for junk in _JUNK:
            body = _with(_VALID, path, junk)
            try:
                got = to_chat(body)
            except InvalidRequest as exc:
                refused += 1
                assert exc.param, (path, junk)
                assert exc.message.startswith(f"{exc.param}: "), (path, junk, exc.message)
            else:
                ChatCompletionSchema().load(got.chat)
    assert refused > 200

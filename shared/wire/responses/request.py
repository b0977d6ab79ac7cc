"""A Responses request body (``POST /v1/responses``) as the chat completions body sent to
providers: ``to_chat(body, previous)`` validates the body and answers a ``ResponsesRequest``,
whose ``chat`` is that body and whose other fields are what the door keeps for itself and
echoes on the Response object.

What becomes what:

- ``instructions``: the first ``system`` message (before the stored conversation: OpenAI
  never carries one response's instructions over to the next, so a stored conversation holds
  none); ``input`` (a string: one user message; or items, ``items.py``) after the stored
  conversation's items, ``previous``, which the door reads for ``previous_response_id``;
- ``tools`` / ``tool_choice``: ``tools.py``; ``parallel_tool_calls`` sent only with tools
  (chat providers refuse it alone);
- ``text.format``: ``response_format`` (``json_schema`` with its name, schema, strict and
  description; ``json_object``; ``text``, the default, left out); ``text.verbosity``:
  ``verbosity``;
- ``max_output_tokens``: ``max_tokens``; ``temperature``, ``top_p``, ``user`` as they are;
  ``reasoning.effort``: ``reasoning_effort``;
- ``stream``: sent, with ``stream_options.include_usage`` so that the usage of a streamed
  answer arrives; ``gateway`` (the gateway's extension): passed on for the chat parser;
- ``model``: sent when given (the chat parser applies the default model and resolves it).

Kept by the door, not sent: ``metadata``, ``store`` (default true), ``background`` (default
false), ``previous_response_id``. Refused with a 400 naming the field: ``conversation``
(conversations are not kept), ``prompt`` (no stored prompt templates), ``moderation`` (no
moderation to run, and ignoring a ``block`` policy would be unsafe), and any field the API
does not have (``unknown_parameter``, as OpenAI answers). Accepted and ignored, since they
cannot change an answer served over chat: ``_IGNORED`` (``include``, ``truncation``,
``service_tier``, the prompt cache's settings, ``safety_identifier``, ``top_logprobs``: no
logprobs are returned, as OpenAI returns none without the matching ``include``...).

The chat body is then the chat parser's (``shared.chat_request.parse_chat``), like any chat
request's: bounds, the model and what its providers can honour are checked there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidRequest
from shared.wire.responses import tools as tool_wire
from shared.wire.responses.checks import (
    at,
    kind_of,
    name,
    obj,
    one_of,
    opt_bool,
    opt_int,
    opt_number,
    opt_one_of,
    opt_string,
    present,
    refuse,
    string,
)
from shared.wire.responses.items import to_messages

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")
VERBOSITIES = ("low", "medium", "high")
FORMATS = ("text", "json_object", "json_schema")

_TRANSLATED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "user",
        "stream",
        "gateway",
    }
)
_DOOR = frozenset({"metadata", "store", "background", "previous_response_id"})
_IGNORED = frozenset(
    {
        "include",
        "truncation",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "safety_identifier",
        "stream_options",
        "top_logprobs",
        "max_tool_calls",  # counts built-in tool calls, which are refused
        "context_management",
        "background_options",
        "access_programs",
        "image",
    }
)
_REFUSED = {
    "conversation": "conversations are not supported: continue with previous_response_id",
    "prompt": "prompt templates are not supported: send instructions and input",
    "moderation": "moderation is not supported by this gateway",
}


@dataclass(frozen=True)
class ResponsesRequest:
    chat: dict[str, Any]  # the chat completions body for the providers
    input_items: list[Any]  # this request's input as items (a string: one user message)
    model: str | None
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    text: dict[str, Any]
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None
    parallel_tool_calls: bool
    reasoning: dict[str, Any] | None
    metadata: dict[str, str]
    user: str | None
    previous_response_id: str | None
    store: bool
    background: bool
    stream: bool

    def echo(self) -> dict[str, Any]:
        """What every Response of this request repeats of it (JSON, to keep with the job so
        that any process can build the Response again: ``envelope.py`` takes it)."""
        return {
            "model": self.model,
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "text": self.text,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_output_tokens": self.max_output_tokens,
            "parallel_tool_calls": self.parallel_tool_calls,
            "reasoning": self.reasoning,
            "metadata": self.metadata,
            "user": self.user,
            "previous_response_id": self.previous_response_id,
            "store": self.store,
            "background": self.background,
        }


def to_chat(body: Any, previous: Sequence[Any] | None = None) -> ResponsesRequest:
    """``body`` validated and translated; ``previous`` is the stored conversation of
    ``previous_response_id`` (its requests' input items and its responses' output items, in
    order), which the door reads before calling this. ``InvalidRequest`` (400) names the
    first field at fault."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object, got {kind_of(body)}.")
    _check_fields(body)
    model = opt_string(body.get("model"), "model", max_len=256)
    if model == "":
        refuse("model", "must not be empty")
    instructions = opt_string(body.get("instructions"), "instructions")
    items = _input_items(body.get("input"))
    messages = to_messages(previous or [], items)
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        refuse("input", "give input (a string or items)")
    chosen = tool_wire.translate(body.get("tools"), body.get("tool_choice"))
    parallel = opt_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")
    text, response_format, verbosity = _text(body.get("text"))
    max_output_tokens = opt_int(body.get("max_output_tokens"), "max_output_tokens", 1)
    temperature = opt_number(body.get("temperature"), "temperature", 0, 2)
    top_p = opt_number(body.get("top_p"), "top_p", 0, 1)
    reasoning = _reasoning(body.get("reasoning"))
    user = opt_string(body.get("user"), "user", max_len=256)
    stream = bool(opt_bool(body.get("stream"), "stream"))
    previous_id = opt_string(body.get("previous_response_id"), "previous_response_id")
    if previous_id == "":
        refuse("previous_response_id", "must not be empty")

    chat: dict[str, Any] = {"messages": messages}
    if model is not None:
        chat["model"] = model
    if chosen.chat:
        chat["tools"] = chosen.chat
        chat["tool_choice"] = chosen.choice
        if parallel is not None:
            chat["parallel_tool_calls"] = parallel
    chat.update(
        present(
            response_format=response_format,
            verbosity=verbosity,
            max_tokens=max_output_tokens,
            temperature=temperature,
            top_p=top_p,
        )
    )
    if reasoning is not None and reasoning["effort"] is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if user is not None:
        chat["user"] = user
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    if body.get("gateway") is not None:
        chat["gateway"] = body["gateway"]

    return ResponsesRequest(
        chat=chat,
        input_items=items,
        model=model,
        instructions=instructions,
        tools=chosen.echo,
        tool_choice=chosen.choice_echo,
        text=text,
        temperature=temperature,
        top_p=top_p,
        max_output_tokens=max_output_tokens,
        parallel_tool_calls=True if parallel is None else parallel,
        reasoning=reasoning,
        metadata=_metadata(body.get("metadata")),
        user=user,
        previous_response_id=previous_id,
        store=opt_bool(body.get("store"), "store") is not False,
        background=bool(opt_bool(body.get("background"), "background")),
        stream=stream,
    )


def _check_fields(body: dict[str, Any]) -> None:
    for field, value in body.items():
        if field in _REFUSED:
            if value is not None:
                refuse(field, _REFUSED[field], code="unsupported_parameter")
        elif field not in _TRANSLATED and field not in _DOOR and field not in _IGNORED:
            refuse(field, f"unknown parameter `{field}`", code="unknown_parameter")


def _input_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        refuse("input", f"expected a string or an array of items, got {kind_of(value)}")
    return list(value)


def _text(value: Any) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """(the ``text`` a Response echoes, the chat ``response_format``, the ``verbosity``)."""
    if value is None:
        return {"format": {"type": "text"}}, None, None
    text = obj(value, "text")
    verbosity = opt_one_of(text.get("verbosity"), "text.verbosity", VERBOSITIES)
    echo: dict[str, Any] = {}
    response_format: dict[str, Any] | None = None
    fmt = text.get("format")
    if fmt is None:
        echo["format"] = {"type": "text"}
    else:
        fmt = obj(fmt, "text.format")
        kind = one_of(fmt.get("type"), "text.format.type", FORMATS)
        if kind == "json_schema":
            echo["format"], response_format = _json_schema(fmt)
        else:
            echo["format"] = {"type": kind}
            response_format = {"type": kind} if kind == "json_object" else None
    if verbosity is not None:
        echo["verbosity"] = verbosity
    return echo, response_format, verbosity


def _json_schema(fmt: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema_name = name(fmt.get("name"), "text.format.name")
    schema = obj(fmt.get("schema"), "text.format.schema")
    strict = opt_bool(fmt.get("strict"), "text.format.strict")
    description = opt_string(fmt.get("description"), "text.format.description")
    inner: dict[str, Any] = {"name": schema_name, "schema": schema}
    if strict is not None:
        inner["strict"] = strict
    if description is not None:
        inner["description"] = description
    echo = {"type": "json_schema", **inner}
    return echo, {"type": "json_schema", "json_schema": inner}


def _reasoning(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    reasoning = obj(value, "reasoning")
    summary = opt_one_of(reasoning.get("summary"), "reasoning.summary", SUMMARIES)
    if summary is None:  # the older name of the same setting
        summary = opt_one_of(
            reasoning.get("generate_summary"), "reasoning.generate_summary", SUMMARIES
        )
    return {
        "effort": opt_one_of(reasoning.get("effort"), "reasoning.effort", EFFORTS),
        "summary": summary,
    }


def _metadata(value: Any) -> dict[str, str]:
    """Up to 16 pairs, keys up to 64 characters, values up to 512 (OpenAI's limits)."""
    if value is None:
        return {}
    metadata = obj(value, "metadata")
    if len(metadata) > 16:
        refuse("metadata", "at most 16 keys")
    for key, item in metadata.items():
        if len(key) > 64:
            refuse("metadata", f"key `{key[:64]}...` is over 64 characters")
        string(item, at("metadata", key), max_len=512)
    return dict(metadata)

"""Responses input items (a stored conversation's, then the request's) as chat messages.

- ``message`` items (``type`` may be left out when ``role`` is given): roles user,
  assistant, system and developer; a ``developer`` message is sent as ``system``, the role
  every chat provider knows (OpenAI's chat API treats the two alike). Content: ``content.py``.
- ``function_call`` items become the ``tool_calls`` of one assistant message: a run of them
  joins the assistant message just before it (the text the model wrote with its calls, as
  ``response.py`` split one chat message into a ``message`` item and ``function_call`` items)
  or opens a new one with no content.
- ``function_call_output`` items become ``tool`` messages with ``tool_call_id`` = ``call_id``.
- ``reasoning`` items are dropped: chat has no standard field to carry a model's reasoning
  back, a provider that does not know one may refuse the request, and OpenAI's own chat API
  discards it.
- Every other item type (built-in tool calls, ``item_reference``...) is a 400 naming it.

The calls are checked as OpenAI checks them, before any provider sees the conversation: a
``function_call_output`` needs an earlier ``function_call`` with its ``call_id``, each call
is answered once, and every call is answered by the end (else the chat provider would refuse
the history, and the refusal would cost a provider attempt instead of a 400 at the door).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.errors import InvalidRequest
from shared.wire.responses.checks import at, obj, one_of, refuse, string
from shared.wire.responses.content import message_content, tool_output

ROLES = ("user", "assistant", "system", "developer")
# Where a stored conversation's item is reported: the client can fix it only by changing
# ``previous_response_id``, so that is the param named.
STORED = "previous_response_id"
_TYPES = ("message", "function_call", "function_call_output", "reasoning")


def to_messages(
    previous: Iterable[Any], items: Iterable[Any], base: str = "input"
) -> list[dict[str, Any]]:
    """The chat messages of ``previous`` (a stored conversation's items) followed by
    ``items`` (the request's, at ``base``)."""
    entries = [(f"{STORED}[{i}]", item) for i, item in enumerate(previous)]
    entries += [(at(base, i), item) for i, item in enumerate(items)]
    try:
        return _Builder().run(entries)
    except InvalidRequest as exc:
        where = exc.param or ""
        if not where.startswith(STORED):
            raise
        said = exc.message.removeprefix(f"{where}: ")
        item = where.removeprefix(STORED)
        raise InvalidRequest(
            f"{STORED}: {said} (the stored conversation's item{item})", param=STORED, code=exc.code
        ) from exc


class _Builder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.calls: dict[str, str] = {}  # call_id -> the function_call's path
        self.answered: dict[str, str] = {}  # call_id -> the output's path

    def run(self, entries: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        for param, raw in entries:
            item = obj(raw, param)
            kind = item.get("type")
            if kind is None and "role" in item:
                kind = "message"
            if kind == "message":
                self.message(item, param)
            elif kind == "function_call":
                self.function_call(item, param)
            elif kind == "function_call_output":
                self.function_call_output(item, param)
            elif kind != "reasoning":
                _unsupported(kind, param)
        for call_id, param in self.calls.items():
            if call_id not in self.answered:
                refuse(param, f"no function_call_output answers the function_call `{call_id}`")
        return self.messages

    def message(self, item: dict[str, Any], param: str) -> None:
        role = one_of(item.get("role"), at(param, "role"), ROLES)
        if "content" not in item:
            refuse(at(param, "content"), "a message needs content")
        content = message_content(item["content"], at(param, "content"), role)
        self.messages.append(
            {"role": "system" if role == "developer" else role, "content": content}
        )

    def function_call(self, item: dict[str, Any], param: str) -> None:
        call_id = string(item.get("call_id"), at(param, "call_id"), nonempty=True)
        name = string(item.get("name"), at(param, "name"), nonempty=True)
        arguments = string(item.get("arguments"), at(param, "arguments"))
        if call_id in self.calls:
            refuse(at(param, "call_id"), f"`{call_id}` is the call_id of {self.calls[call_id]}")
        self.calls[call_id] = param
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})

    def function_call_output(self, item: dict[str, Any], param: str) -> None:
        call_id = string(item.get("call_id"), at(param, "call_id"), nonempty=True)
        if call_id not in self.calls:
            refuse(at(param, "call_id"), f"no function_call with call_id `{call_id}` comes before")
        if call_id in self.answered:
            refuse(
                at(param, "call_id"),
                f"`{call_id}` was answered already by {self.answered[call_id]}",
            )
        self.answered[call_id] = param
        if "output" not in item:
            refuse(at(param, "output"), "a function_call_output needs output")
        content = tool_output(item["output"], at(param, "output"))
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})


def _unsupported(kind: Any, param: str) -> None:
    if not isinstance(kind, str):
        refuse(at(param, "type"), f"an item needs a type ({', '.join(_TYPES)}) or a role")
    if kind == "item_reference":
        refuse(
            param,
            "item references are not supported: send the item itself",
            code="unsupported_parameter",
        )
    refuse(
        at(param, "type"),
        f"`{kind}` items are not supported: this gateway's models are served over chat "
        f"completions, which carry {', '.join(_TYPES)} items only",
        code="unsupported_parameter",
    )

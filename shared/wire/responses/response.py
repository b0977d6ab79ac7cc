"""A chat completion as a Response object (``from_chat``).

- ``output``, in the order the model produced them: a ``reasoning`` item when the message
  has ``reasoning_content`` (or ``reasoning``), its text as ``content`` (``reasoning_text``),
  with ``summary: []``, since chat gives the reasoning itself and no summary of it; a
  ``message`` item with one ``output_text`` part (``annotations: []``, ``logprobs: []``) and
  a ``refusal`` part when the provider refused; then one ``function_call`` item per tool call
  (``call_id`` the chat tool call's id). A message item is left out when the model only
  called tools or only reasoned, and is there (empty) when it produced nothing at all. Item
  ids come from the response's id (``ids.py``).
- ``status``: ``completed``, or ``incomplete`` with ``incomplete_details.reason``
  ``max_output_tokens`` (finish_reason ``length``) or ``content_filter`` (``content_filter``,
  Z.ai's ``sensitive``): a filtered answer is an incomplete response, not an error.
- ``usage``: ``prompt_tokens`` -> ``input_tokens`` (``cached_tokens`` from
  ``prompt_tokens_details``; ``cache_write_tokens`` 0, which chat does not report),
  ``completion_tokens`` -> ``output_tokens`` (``reasoning_tokens`` from
  ``completion_tokens_details``); null when the provider sent none.

Whatever shape the provider's answer has, this builds a Response and raises nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.wire.responses import ids
from shared.wire.responses.envelope import Request, envelope

# finish_reason -> incomplete_details.reason; any other finish_reason completes.
INCOMPLETE = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
    "sensitive": "content_filter",
}
STATUSES = ("completed", "incomplete", "cancelled")


def from_chat(
    completion: Mapping[str, Any],
    *,
    response_id: str,
    created_at: float,
    request: Request,
    completed_at: float | None = None,
    status: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """The Response of ``completion`` for ``request`` (a ``ResponsesRequest`` or its stored
    echo). ``status`` overrides the one the finish reason gives (one of ``STATUSES``: e.g.
    ``cancelled`` for the part of a stream produced before a cancel); ``model`` the
    completion's."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    reason = INCOMPLETE.get(str(choice.get("finish_reason")))
    final = status if status in STATUSES else ("incomplete" if reason else "completed")
    answered_by = completion.get("model")
    return envelope(
        request,
        response_id=response_id,
        created_at=created_at,
        status=final,
        output=output_items(
            message, response_id, "completed" if final == "completed" else "incomplete"
        ),
        usage=usage(completion.get("usage")),
        incomplete_reason=reason,
        completed_at=completed_at,
        model=model or (answered_by if isinstance(answered_by, str) else None),
    )


def output_items(
    message: Mapping[str, Any], response_id: str, item_status: str = "completed"
) -> list[dict[str, Any]]:
    """The output items of one chat ``message``."""
    items: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        items.append(
            {
                "id": ids.item_id(response_id, ids.REASONING, len(items)),
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": reasoning}],
            }
        )
    text = _text(message.get("content"))
    refusal = message.get("refusal")
    refusal = refusal if isinstance(refusal, str) and refusal else None
    calls = _calls(message.get("tool_calls"))
    if text or refusal or not (calls or items):
        parts: list[dict[str, Any]] = []
        if text or not refusal:
            parts.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        items.append(
            {
                "id": ids.item_id(response_id, ids.MESSAGE, len(items)),
                "type": "message",
                "role": "assistant",
                "status": item_status,
                "content": parts,
            }
        )
    for name, arguments, call_id in calls:
        index = len(items)
        items.append(
            {
                "id": ids.item_id(response_id, ids.FUNCTION_CALL, index),
                "type": "function_call",
                "call_id": call_id or ids.item_id(response_id, ids.CALL, index),
                "name": name,
                "arguments": arguments,
                "status": item_status,
            }
        )
    return items


def usage(raw: Any) -> dict[str, Any] | None:
    """A chat ``usage`` as a Response's, or None."""
    if not isinstance(raw, dict):
        return None
    input_tokens = _count(raw.get("prompt_tokens"))
    output_tokens = _count(raw.get("completion_tokens"))
    total = _count(raw.get("total_tokens")) or input_tokens + output_tokens
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": _count(_get(prompt_details, "cached_tokens")),
            "cache_write_tokens": 0,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": _count(_get(completion_details, "reasoning_tokens"))
        },
        "total_tokens": total,
    }


def _text(content: Any) -> str:
    """A chat message's content (a string, or text parts from some providers) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _calls(raw: Any) -> list[tuple[str, str, str | None]]:
    """(name, arguments as a JSON string, the call's id or None) of each function call."""
    calls = []
    for call in raw if isinstance(raw, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        name = function.get("name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # a provider that sent the object itself
            arguments = json.dumps({} if arguments is None else arguments, ensure_ascii=False)
        call_id = call.get("id")
        calls.append(
            (
                name if isinstance(name, str) else "",
                arguments,
                call_id if isinstance(call_id, str) and call_id else None,
            )
        )
    return calls


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

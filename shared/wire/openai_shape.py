"""Every ``chat.completion`` and ``chat.completion.chunk`` the gateway returns carries each
field OpenAI's API reference marks required, whatever the provider sent: strict, generated
clients reject an answer without them. Fields the provider added are kept. Applied where an
answer is made or relayed: the adapters, the stream assembler and replay, the cache's and the
fallbacks' answers."""

from __future__ import annotations

import time
import uuid
from typing import Any


def _head(data: dict[str, Any], kind: str, model: str) -> list[Any]:
    if not isinstance(data.get("id"), str) or not data["id"]:
        data["id"] = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    data["object"] = kind
    if isinstance(data.get("created"), bool) or not isinstance(data.get("created"), int):
        created = data.get("created")
        data["created"] = int(created) if isinstance(created, float) else int(time.time())
    if not isinstance(data.get("model"), str) or not data["model"]:
        data["model"] = model
    if not isinstance(data.get("choices"), list):
        data["choices"] = []
    choices: list[Any] = data["choices"]
    return choices


def completion(data: dict[str, Any], model: str = "") -> dict[str, Any]:
    """``data`` (changed in place, and returned) with OpenAI's required fields: ``id``,
    ``object``, ``created``, ``model``, ``choices[].{index, message, finish_reason,
    logprobs}``, ``message.{role, content, refusal}``."""
    for i, choice in enumerate(_head(data, "chat.completion", model)):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", i)
        choice.setdefault("logprobs", None)
        if not choice.get("finish_reason"):
            choice["finish_reason"] = "stop"
        message = choice.get("message")
        if not isinstance(message, dict):
            message = choice["message"] = {}
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
        message.setdefault("refusal", None)
    return data


def chunk(data: dict[str, Any], model: str = "") -> dict[str, Any]:
    """A ``chat.completion.chunk`` with OpenAI's required fields: ``id``, ``object``,
    ``created``, ``model``, ``choices[].{index, delta, finish_reason}`` (``logprobs`` too,
    null, as OpenAI sends it)."""
    for i, choice in enumerate(_head(data, "chat.completion.chunk", model)):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", i)
        if not isinstance(choice.get("delta"), dict):
            choice["delta"] = {}
        choice.setdefault("finish_reason", None)
        choice.setdefault("logprobs", None)
    return data

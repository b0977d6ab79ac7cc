"""The operator's bounds on one chat request (``limits.*``), beyond what the schema checks,
for the API's routes and the batch duty's lines alike.

The API's body size is bounded by Flask (``MAX_CONTENT_LENGTH``, 413); these answer 400
``invalid_request_error`` naming the parameter and the configured bound.
"""

from __future__ import annotations

import json
from typing import Any

from shared.config.settings import LimitsSettings
from shared.errors import InvalidRequest


def content_chars(messages: list[dict[str, Any]]) -> int:
    """Characters of message content: text as is, other parts (images as data URLs, audio)
    by the length of their JSON."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                total += len(text) if isinstance(text, str) else len(json.dumps(part))
    return total


def check(valid: dict[str, Any], limits: LimitsSettings, param_prefix: str = "") -> None:
    """Raise 400 naming the parameter (under ``param_prefix``, e.g. ``request``)."""
    broken = first_breach(valid, limits)
    if broken is not None:
        param, message = broken
        if param_prefix:
            param = f"{param_prefix}.{param}"
        raise InvalidRequest(f"{param}: {message}", param=param)


def first_breach(valid: dict[str, Any], limits: LimitsSettings) -> tuple[str, str] | None:
    """The first bound this validated body breaks, as (parameter, message), or None."""
    messages = valid["messages"]
    if len(messages) > limits.max_messages:
        return (
            "messages",
            f"at most {limits.max_messages} messages are accepted (limits.max_messages); "
            f"got {len(messages)}",
        )
    chars = content_chars(messages)
    if chars > limits.max_content_chars:
        return (
            "messages",
            f"the content totals {chars} characters; at most {limits.max_content_chars} are "
            "accepted (limits.max_content_chars)",
        )
    n = valid.get("n")
    if n is not None and n > limits.max_n:
        return "n", f"must be at most {limits.max_n} (limits.max_n); got {n}"
    for name in ("max_tokens", "max_completion_tokens"):
        asked = valid.get(name)
        if asked is not None and asked > limits.max_tokens:
            return name, f"must be at most {limits.max_tokens} (limits.max_tokens); got {asked}"
    return None

"""The degraded answer: the last fallback when every provider failed (the cached answer
before it lives in ``shared.cache``)."""

from __future__ import annotations

import time
import uuid
from typing import Any


def degraded_completion(text: str, model: str) -> dict[str, Any]:
    """The configured canned answer, shaped as a chat.completion."""
    return {
        "id": f"chatcmpl-degraded-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }

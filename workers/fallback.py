"""The fallbacks after every deployment failed: the last good answer, a degraded answer."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared.keys import Keys
from shared.settings import FallbackSettings

_LUA = Path(__file__).resolve().parents[1] / "shared" / "lua" / "lastgood_put.lua"
DIGEST_VERSION = "1"  # bump when the request normalisation changes


def request_digest(request: dict[str, Any]) -> str:
    """The same request (model and every field) gives the same digest."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{DIGEST_VERSION}:{canonical}".encode()).hexdigest()


class LastGood:
    """The last good answer per (API key, request), bounded in entries and time."""

    def __init__(self, client: Redis, keys: Keys, settings: FallbackSettings) -> None:
        self.r, self.keys, self.s = client, keys, settings
        self._put = client.register_script(_LUA.read_text())

    def put(
        self,
        owner: str,
        request: dict[str, Any],
        result: dict[str, Any],
        pipe: Pipeline | None = None,
    ) -> None:
        """Store (or, with ``pipe``, queue storing) the last good answer to this request."""
        self._put(
            keys=[self.keys.lastgood(owner, request_digest(request)), self.keys.lastgood_index],
            args=[
                json.dumps(result, separators=(",", ":")),
                self.s.lastgood_ttl_s,
                time.time(),
                self.s.lastgood_max_entries,
            ],
            client=pipe,
        )

    def get(self, owner: str, request: dict[str, Any]) -> dict[str, Any] | None:
        raw = self.r.get(self.keys.lastgood(owner, request_digest(request)))
        return json.loads(raw) if raw else None


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

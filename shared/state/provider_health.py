"""Provider health as the fleet sees it: the last check's verdict and the last call error.

Written by the workers' health checks (workers/health_checks.py) and failed calls; read by routing
and by the API's status pages. A provider never checked counts as healthy.
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from shared.keys import Keys


class HealthStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys

    def mark(
        self,
        provider: str,
        healthy: bool,
        error: str | None = None,
        latency_ms: float | None = None,
        ttl_s: float = 3600,
    ) -> None:
        fields: dict[str, Any] = {"healthy": "1" if healthy else "0", "checked_at": time.time()}
        if latency_ms is not None:
            fields["latency_ms"] = round(latency_ms, 1)
        if error:
            fields["last_error"] = error[:300]
            fields["last_error_at"] = time.time()
        key = self.keys.health(provider)
        self.r.hset(key, mapping=fields)  # type: ignore[arg-type]
        self.r.expire(key, int(ttl_s))

    def note_error(self, provider: str, error: str) -> None:
        """Remember a call's error for the status page (does not change health)."""
        self.r.hset(
            self.keys.health(provider),
            mapping={"last_error": error[:300], "last_error_at": time.time()},
        )

    def get(self, provider: str) -> dict[str, Any]:
        h: dict[str, Any] = dict(self.r.hgetall(self.keys.health(provider)))  # type: ignore[arg-type]
        return {
            "healthy": h.get("healthy") != "0",
            "checked_at": float(h["checked_at"]) if h.get("checked_at") else None,
            "latency_ms": float(h["latency_ms"]) if h.get("latency_ms") else None,
            "last_error": h.get("last_error"),
            "last_error_at": float(h["last_error_at"]) if h.get("last_error_at") else None,
        }

"""Fleet-wide provider call statistics for the dashboard: per provider and minute, the calls,
the errors and a latency histogram, in Redis (``Keys.provider_minute``), so every worker's
calls count and any API process can read them. p50/p95 come from the histogram (the upper
bound of the bucket the quantile falls in). Written with plain HINCRBYs: each counter moves
on its own, and nothing reads them as a set that must agree."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from shared.keys import Keys

BOUNDS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
KEEP_S = 3600


def _bucket(ms: float) -> int:
    for i, bound in enumerate(BOUNDS_MS):
        if ms <= bound:
            return i
    return len(BOUNDS_MS)


class ProviderStats:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys

    def record(self, attempts: Iterable[dict[str, Any]]) -> None:
        """Count provider calls (attempt records of ``workers.runner``)."""
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for a in attempts:
            provider = a.get("provider")
            if not provider or a.get("duration_ms") is None:
                continue
            key = self.keys.provider_minute(provider, int(float(a["started_at"]) // 60))
            pipe.hincrby(key, "calls", 1)
            if a.get("outcome") != "success":
                pipe.hincrby(key, "errors", 1)
            pipe.hincrby(key, f"b{_bucket(float(a['duration_ms']))}", 1)
            pipe.expire(key, KEEP_S)
            n += 1
        if n:
            pipe.execute()

    def summary(
        self, providers: Iterable[str], minutes: int = 5, now: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per provider over the last ``minutes``: calls, error rate, p50 and p95 (ms)."""
        names = list(providers)
        this = int((now or time.time()) // 60)
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            for m in range(this - minutes + 1, this + 1):
                pipe.hgetall(self.keys.provider_minute(name, m))
        got = pipe.execute()
        out: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(names):
            calls = errors = 0
            hist = [0] * (len(BOUNDS_MS) + 1)
            for h in got[i * minutes : (i + 1) * minutes]:
                calls += int(h.get("calls") or 0)
                errors += int(h.get("errors") or 0)
                for b in range(len(hist)):
                    hist[b] += int(h.get(f"b{b}") or 0)
            out[name] = {
                "calls": calls,
                "error_rate": round(errors / calls, 4) if calls else None,
                "p50_ms": _quantile(hist, 0.5),
                "p95_ms": _quantile(hist, 0.95),
                "minutes": minutes,
            }
        return out


def _quantile(hist: list[int], q: float) -> float | None:
    total = sum(hist)
    if not total:
        return None
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= q * total:
            return float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else float("inf")
    return None

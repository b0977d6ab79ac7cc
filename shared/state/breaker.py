"""A circuit breaker shared by the whole fleet: state in Redis, transitions in Lua.

States ``closed`` -> ``open`` (``breaker.consecutive_failures`` in a row, or a failure rate of
``breaker.failure_rate`` over ``breaker.window_s`` with at least ``breaker.min_calls``) ->
``half_open`` after ``breaker.open_s``: exactly one probe call across all workers, held by a
lease of ``breaker.probe_timeout_s`` -> ``closed`` on success, ``open`` again on failure.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared import lua, metrics
from shared.config.settings import BreakerSettings
from shared.keys import Keys

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class Admission:
    allowed: bool
    probe_token: str = ""  # set when this call is the half-open probe
    reason: str = ""  # why not: "open" or "unhealthy"


class Breakers:
    def __init__(self, client: Redis, keys: Keys, settings: BreakerSettings) -> None:
        self.r, self.keys, self.s = client, keys, settings
        self._allow = client.register_script(lua.source("breaker_allow"))
        self._record = client.register_script(lua.source("breaker_record"))

    def _transition(self, name: str, before: str, after: str) -> None:
        if before != after:
            metrics.BREAKER_TRANSITIONS.labels(name, after).inc()
            log.warning(
                "breaker %s: %s -> %s",
                name,
                before,
                after,
                extra={"breaker": name, "from": before, "to": after},
            )

    def allow(self, name: str, provider: str) -> Admission:
        """May a call go to this breaker's deployment (and its provider is healthy)?"""
        token = secrets.token_hex(8)
        decision, before, after = self._allow(
            keys=[
                self.keys.breaker(name),
                self.keys.breaker_probe(name),
                self.keys.health(provider),
            ],
            args=[time.time(), int(self.s.probe_timeout_s * 1000), token],
        )
        self._transition(name, str(before), str(after))
        if decision == "closed":
            return Admission(True)
        if decision == "probe":
            return Admission(True, token)
        return Admission(False, reason=str(decision))

    def record(
        self, name: str, success: bool, probe_token: str = "", pipe: Pipeline | None = None
    ) -> str:
        """Record a call's outcome; with ``pipe``, only queue it (then ``settle`` its result)."""
        res = self._record(
            keys=[
                self.keys.breaker(name),
                self.keys.breaker_probe(name),
                self.keys.breaker_window(name),
            ],
            args=[
                time.time(),
                "1" if success else "0",
                probe_token,
                self.s.consecutive_failures,
                self.s.failure_rate,
                self.s.min_calls,
                self.s.window_s,
                self.s.open_s,
            ],
            client=pipe,
        )
        if pipe is not None:
            return ""
        return self.settle(name, res)

    def settle(self, name: str, result: Any) -> str:
        """Log and count the transition ``record`` returned (directly or from a pipeline)."""
        before, after = result
        self._transition(name, str(before), str(after))
        return str(after)

    def state(self, name: str) -> dict[str, object]:
        h = self.r.hgetall(self.keys.breaker(name))
        state = str(h.get("state") or CLOSED)
        until = float(h.get("open_until") or 0)
        if state == OPEN and time.time() >= until:
            state = HALF_OPEN  # it admits a probe on the next call
        return {"state": state, "open_until": until or None, "opens": int(h.get("opens") or 0)}


def breaker_name(provider: str, model: str, per_model: bool) -> str:
    return f"{provider}/{model}" if per_model else provider

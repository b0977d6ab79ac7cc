"""Per-API-key limits: requests/min, tokens/min and concurrent jobs (``ratelimit.lua``).

Written as one Lua script rather than taken from the ``limits`` library: ``limits`` offers
fixed and sliding windows but not GCRA, cannot check three limits as one all-or-nothing step,
and has no concurrency slots that free themselves when their job ends. The script reads the
clock from Redis (``TIME``), so API processes on machines with skewed clocks still agree.

Tokens are estimated before the call (prompt characters / 4 plus ``max_tokens``) and corrected
from the answer's ``usage`` afterwards (``adjust_tokens``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from redis import Redis

from shared import lua
from shared.config.settings import Settings
from shared.keys import Keys

# A concurrency slot taken by a process that died before it created the job frees after this.
ORPHAN_SLOT_MS = 10_000


@dataclass(frozen=True)
class KeyLimits:
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None

    @property
    def any(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_concurrent)

    @classmethod
    def for_key(cls, settings: Settings, key_id: str) -> KeyLimits:
        lim = settings.limits
        key = next((k for k in settings.auth.keys if k.id == key_id), None)
        if key is None:
            return cls(lim.default_rpm, lim.default_tpm, lim.default_max_concurrent)
        return cls(
            key.rpm if key.rpm is not None else lim.default_rpm,
            key.tpm if key.tpm is not None else lim.default_tpm,
            key.max_concurrent if key.max_concurrent is not None else lim.default_max_concurrent,
        )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # ok | rpm | tpm | too_large | concurrency
    retry_after_s: float
    limits: KeyLimits
    rpm_remaining: int
    rpm_reset_s: float
    tpm_remaining: int
    tpm_reset_s: float
    concurrent: int

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the limits that are set."""
        out: dict[str, str] = {}
        if self.limits.rpm:
            out["x-ratelimit-limit-requests"] = str(self.limits.rpm)
            out["x-ratelimit-remaining-requests"] = str(max(0, self.rpm_remaining))
            out["x-ratelimit-reset-requests"] = format_duration(self.rpm_reset_s)
        if self.limits.tpm:
            out["x-ratelimit-limit-tokens"] = str(self.limits.tpm)
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.tpm_remaining))
            out["x-ratelimit-reset-tokens"] = format_duration(self.tpm_reset_s)
        return out


def format_duration(seconds: float) -> str:
    """OpenAI's style: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def estimate_tokens(body: dict[str, Any]) -> int:
    """Before the call: about 4 characters a token for the prompt, plus the completion cap."""
    chars = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else len(json.dumps(content))
        chars += 16  # role and framing
    if body.get("tools"):
        chars += len(json.dumps(body["tools"]))
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    n = body.get("n") or 1
    return math.ceil(chars / 4) + int(cap) * int(n)


class RateLimiter:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.keys = keys
        self._check = client.register_script(lua.with_library("ratelimit", "gcra"))
        self._adjust = client.register_script(lua.with_library("ratelimit_adjust", "gcra"))
        self.r = client

    def _keys(self, key_id: str) -> list[str]:
        return [
            self.keys.ratelimit(key_id, "rpm"),
            self.keys.ratelimit(key_id, "tpm"),
            self.keys.ratelimit(key_id, "concurrent"),
        ]

    def check(
        self,
        key_id: str,
        limits: KeyLimits,
        *,
        tokens: int = 0,
        job_id: str = "",
        consume: bool = True,
        take_slot: bool = True,
        orphan_ms: int = ORPHAN_SLOT_MS,
    ) -> Verdict:
        res = self._check(
            keys=self._keys(key_id),
            args=[
                limits.rpm or 0,
                limits.tpm or 0,
                tokens,
                (limits.max_concurrent or 0) if take_slot else 0,
                job_id,
                self.keys.job(""),
                orphan_ms,
                1 if consume else 0,
            ],
        )
        reason = res[1].decode() if isinstance(res[1], bytes) else str(res[1])
        return Verdict(
            allowed=bool(res[0]),
            reason=reason,
            retry_after_s=int(res[2]) / 1000,
            limits=limits,
            rpm_remaining=int(res[3]),
            rpm_reset_s=int(res[4]) / 1000,
            tpm_remaining=int(res[5]),
            tpm_reset_s=int(res[6]) / 1000,
            concurrent=int(res[7]),
        )

    def release(self, key_id: str, job_id: str) -> None:
        """Free a slot whose job was never accepted (the slot of an ended job frees itself)."""
        self.r.zrem(self.keys.ratelimit(key_id, "concurrent"), job_id)

    def adjust_tokens(self, key_id: str, tpm: int, delta: int) -> None:
        """Correct the tokens/min bucket by ``delta`` (actual usage minus the estimate)."""
        if delta:
            self._adjust(keys=[self.keys.ratelimit(key_id, "tpm")], args=[tpm, delta])

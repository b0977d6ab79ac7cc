"""An API key's budget in Redis: one hash per key (``Keys.budget``) of ``period``, ``spent`` and
``reserved``, integer micro-USD.

A job reserves the upper bound of its cost as it is created (``create.lua``: checked and taken
in one step, so any number of API processes admit as one), gives what is left of it back when
it ends (``job_ended.lua``, whatever the end), and what each provider call billed moves from
the reservation to ``spent`` as it is known (``charge.lua``: one step, never counted twice).
``spent + reserved`` never exceeds the budget at admission; a period's reset (Redis's clock,
UTC) starts ``spent`` again at 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import redis

from shared import lua
from shared.keys import Keys


@dataclass(frozen=True)
class BudgetHold:
    """What a new job must find room for: ``micro`` of a budget of ``limit`` micro-USD."""

    limit: int
    period: str  # day | month | total
    micro: int

    def args(self) -> tuple[str, str, int]:
        return str(self.limit), self.period, self.micro


@dataclass(frozen=True)
class BudgetState:
    spent: int
    reserved: int
    reset_s: int  # the period's end (epoch s); 0: it never resets (``total``)

    def left(self, limit: int) -> int:
        return max(0, limit - self.spent - self.reserved)

    def resets_at(self) -> str | None:
        if not self.reset_s:
            return None
        return dt.datetime.fromtimestamp(self.reset_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usd(micro: int) -> float:
    return micro / 1_000_000


def usd_text(micro: int) -> str:
    """A header's USD figure: exact to the micro-dollar, without trailing zeros."""
    return f"{micro / 1_000_000:.6f}".rstrip("0").rstrip(".") or "0"


class BudgetStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._read = client.register_script(
            lua.with_functions("budget_read", *lua.BUDGET_FUNCTIONS)
        )

    def read(self, owner: str, period: str) -> BudgetState:
        spent, reserved, reset = self._read(keys=[self.keys.budget(owner)], args=[period])
        return BudgetState(int(spent), int(reserved), int(reset))

"""What was spent: each provider call counted once (``charge.lua``) into the job, the key's
budget and the key's usage for the UTC day; read back per key, per provider, model or day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline

from shared import lua
from shared.keys import Keys
from shared.spend.cost import Usage

USAGE_KEEP_S = 400 * 86400  # a year and a month of days, for month-over-month reports
MEASURES = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_micro")
GROUPS = ("model", "provider", "day", "key")


@dataclass(frozen=True)
class Charge:
    """One delivery's billed call: the cost (None: the deployment has no price)."""

    provider: str
    model: str
    usage: Usage
    micro: int | None


@dataclass
class Row:
    group: dict[str, str]
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_micro: int = 0
    unpriced: int = 0  # requests whose deployment had no price: cost unknown
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, measure: str, n: int) -> None:
        setattr(self, measure, getattr(self, measure) + n)

    def view(self) -> dict[str, Any]:
        return {
            **self.group,
            "requests": self.requests,
            "input_tokens": self.prompt_tokens,
            "output_tokens": self.completion_tokens,
            "cached_input_tokens": self.cached_tokens,
            # Unknown when some requests had no price and nothing priced was spent.
            "cost_usd": None if self.unpriced and not self.cost_micro else self.cost_micro / 1e6,
            "unpriced_requests": self.unpriced,
        }


class SpendStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys
        self._charge = client.register_script(
            lua.with_functions("charge", *lua.BUDGET_FUNCTIONS, libraries=lua.BUDGET_HOLD)
        )

    def charge(
        self,
        job_id: str,
        token: str,
        owner: str,
        charge: Charge,
        budget_period: str | None,
        pipe: Pipeline | None = None,
    ) -> Any:
        """Count ``charge`` once for the delivery ``token`` (a repeat counts nothing)."""
        u = charge.usage
        return self._charge(
            keys=[self.keys.job(job_id), self.keys.budget(owner)],
            args=[
                token,
                charge.micro or 0,
                "1" if charge.micro is None else "0",
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                charge.provider,
                charge.model,
                budget_period or "",
                self.keys.usage_prefix(owner),
                self.keys.usage_keys_prefix,
                owner,
                USAGE_KEEP_S,
            ],
            client=pipe,
        )

    def owners(self, days: list[str]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        for day in days:
            pipe.smembers(self.keys.usage_keys(day))
        return sorted({str(o) for s in pipe.execute() for o in s})

    def rows(self, owners: Iterable[str], days: list[str], group_by: str) -> list[Row]:
        """Usage of ``owners`` on ``days`` (YYYYMMDD), one row per group (``GROUPS``)."""
        owners = list(owners)
        pipe = self.r.pipeline(transaction=False)
        for owner in owners:
            for day in days:
                pipe.hgetall(self.keys.usage(owner, day))
        found = iter(pipe.execute())
        out: dict[tuple[str, ...], Row] = {}
        for owner in owners:
            for day in days:
                for name, value in next(found).items():
                    provider, model, measure = str(name).split("\t")
                    group = {
                        "model": {"model": model},
                        "provider": {"provider": provider},
                        "day": {"day": f"{day[:4]}-{day[4:6]}-{day[6:]}"},
                        "key": {},
                    }[group_by]
                    group = {"key_id": owner, **group}
                    row = out.setdefault(tuple(group.values()), Row(group))
                    row.add("unpriced" if measure == "unpriced" else measure, int(value))
        return [out[k] for k in sorted(out)]


def days_between(start: dt.date, end: dt.date) -> list[str]:
    n = (end - start).days
    return [(start + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(n + 1)]

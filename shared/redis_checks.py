"""Could this Redis lose jobs the gateway has accepted? Read with ``INFO``, which managed Redis
services answer (many refuse ``CONFIG GET``).

The gateway keeps every job, lease and queue entry in Redis, and answers 202 once a job is
written there. Three settings break that promise:

- an evicting ``maxmemory-policy`` (anything but ``noeviction``): under memory pressure Redis
  deletes keys, job records and leases among them (``volatile-*`` policies pick exactly the
  keys with a TTL, which job records have);
- no AOF and no connected replica: a restart loses every write since the last snapshot;
- a Redis older than 5: scripts that read ``TIME`` and then write are replicated as scripts,
  not as their effects, unless effect replication is on (the default only from 5).

Each one is a ``degraded`` reason on ``/health/ready`` and a warning on ``/v1/health`` and at
start; an evicting policy also stops ``llm-gateway api`` and ``worker`` from starting, unless
``redis.allow_eviction`` says the operator knows.

Memory is the fourth: under ``noeviction`` a full Redis refuses every write, and enqueue stops
for the whole fleet. Each reading keeps ``used_memory`` with its time, so the process knows how
fast Redis grows; a warning says when Redis would fill within a day at that rate (against
``maxmemory``, or the machine's memory when none is set).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

SECTIONS = ("server", "persistence", "memory", "replication")
MIN_VERSION = (5, 0)
# A probe every second reads INFO once in this many seconds.
CACHE_S = 10.0
# The growth rate is measured over at most the last hour of readings, and only once they span
# this long (a minute's burst says little about a day).
TREND_MIN_S = 300.0
TREND_MAX_S = 3600.0
FILL_HORIZON_S = 86400.0


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


@dataclass(frozen=True)
class RedisFacts:
    """What INFO says about persistence, eviction and the version."""

    version: str
    maxmemory_policy: str
    aof_enabled: bool
    replicas: int  # replicas connected to this primary
    used_memory: int = 0
    maxmemory: int = 0  # 0: no limit set
    system_memory: int = 0  # the machine's, when INFO says (Redis >= 3.2)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> RedisFacts:
        return cls(
            version=str(info.get("redis_version", "")),
            maxmemory_policy=str(info.get("maxmemory_policy", "")),
            aof_enabled=str(info.get("aof_enabled", "0")) == "1",
            replicas=int(info.get("connected_slaves") or 0),
            used_memory=int(info.get("used_memory") or 0),
            maxmemory=int(info.get("maxmemory") or 0),
            system_memory=int(info.get("total_system_memory") or 0),
        )

    @property
    def memory_limit(self) -> int:
        """What Redis may grow to: ``maxmemory``, else the machine's memory (0: unknown)."""
        return self.maxmemory or self.system_memory

    @property
    def evicting(self) -> bool:
        return self.maxmemory_policy != "noeviction"

    def risks(self) -> list[str]:
        out = []
        if self.evicting:
            out.append(
                f"Redis may evict accepted jobs: maxmemory-policy is {self.maxmemory_policy} "
                "(the gateway needs noeviction)"
            )
        if not self.aof_enabled and not self.replicas:
            out.append(
                "Redis may lose accepted jobs when it restarts: appendonly is off and no "
                "replica is connected"
            )
        if self.version and _version(self.version) < MIN_VERSION:
            out.append(
                f"Redis {self.version} is older than 5: scripts that read TIME need effect "
                "replication"
            )
        return out


@dataclass(frozen=True)
class RedisCheck:
    """One reading: the facts, or why INFO could not be read; ``growth``: how fast
    ``used_memory`` grew over the readings before it (bytes per second; None until they span
    ``TREND_MIN_S``)."""

    facts: RedisFacts | None
    error: str | None = None
    growth: float | None = None

    @property
    def fills_in_s(self) -> float | None:
        """Seconds until Redis reaches its memory limit at the current growth (None: not
        growing, or no limit known)."""
        f = self.facts
        if f is None or not self.growth or self.growth <= 0 or not f.memory_limit:
            return None
        return max(0.0, (f.memory_limit - f.used_memory) / self.growth)

    def memory_warning(self) -> str | None:
        fills = self.fills_in_s
        if fills is None or fills >= FILL_HORIZON_S or self.facts is None:
            return None
        limit = "maxmemory" if self.facts.maxmemory else "the machine's memory"
        return (
            f"Redis grows {self.growth or 0:,.0f} bytes/s ({self.facts.used_memory:,} used): at "
            f"this rate it reaches {limit} ({self.facts.memory_limit:,} bytes) in "
            f"{fills / 3600:.1f} h, and then refuses every write (no new job is accepted)"
        )

    @property
    def risks(self) -> list[str]:
        """Known ways to lose accepted jobs (``/health/ready``'s degraded reasons)."""
        return self.facts.risks() if self.facts else []

    @property
    def warnings(self) -> list[str]:
        """The risks, or that they could not be checked (``/v1/health``, the start-up log)."""
        if self.facts is None:
            return [
                f"could not read the Redis settings with INFO ({self.error}): persistence and "
                "eviction are unchecked"
            ]
        memory = self.memory_warning()
        return self.risks + ([memory] if memory else [])

    def refusal(self, allow_eviction: bool) -> str | None:
        """Why a process must not start on this Redis, if it must not."""
        if self.facts is None or not self.facts.evicting or allow_eviction:
            return None
        return (
            f"the Redis runs maxmemory-policy {self.facts.maxmemory_policy}: under memory "
            "pressure it deletes keys, accepted jobs and their leases among them. Set "
            "maxmemory-policy noeviction on the Redis (CONFIG SET, or the managed service's "
            "parameter group), or set redis.allow_eviction: true to run anyway"
        )


def read_check(client: Redis) -> RedisCheck:
    """One INFO per section, in one round trip (a single INFO of several sections needs
    Redis 7)."""
    try:
        pipe = client.pipeline(transaction=False)
        for section in SECTIONS:
            pipe.info(section)
        info: dict[str, Any] = {}
        for part in pipe.execute():
            info.update(part)
    except (RedisError, OSError) as exc:
        return RedisCheck(None, f"{type(exc).__name__}: {exc}")
    return RedisCheck(RedisFacts.from_info(info))


class CachedCheck:
    """``read_check`` at most once per ``max_age_s`` in a process: a readiness probe every
    second costs one INFO reading per ``max_age_s``, not one per probe."""

    def __init__(
        self, max_age_s: float = CACHE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s, self.clock = max_age_s, clock
        self._last: tuple[float, RedisCheck] | None = None
        self._memory: deque[tuple[float, int]] = deque()  # (time, used_memory), oldest first

    def get(self, client: Redis) -> RedisCheck:
        now = self.clock()
        if self._last is None or now - self._last[0] >= self.max_age_s:
            check = read_check(client)
            if check.facts is not None:
                check = replace(check, growth=self._growth(now, check.facts.used_memory))
            self._last = (now, check)
        return self._last[1]

    def _growth(self, now: float, used: int) -> float | None:
        self._memory.append((now, used))
        while now - self._memory[0][0] > TREND_MAX_S:
            self._memory.popleft()
        since, then = self._memory[0]
        if now - since < TREND_MIN_S:
            return None
        return (used - then) / (now - since)

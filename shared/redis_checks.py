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
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

SECTIONS = ("server", "persistence", "memory", "replication")
MIN_VERSION = (5, 0)
# A probe every second reads INFO once in this many seconds.
CACHE_S = 10.0


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


@dataclass(frozen=True)
class RedisFacts:
    """What INFO says about persistence, eviction and the version."""

    version: str
    maxmemory_policy: str
    aof_enabled: bool
    replicas: int  # replicas connected to this primary

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> RedisFacts:
        return cls(
            version=str(info.get("redis_version", "")),
            maxmemory_policy=str(info.get("maxmemory_policy", "")),
            aof_enabled=str(info.get("aof_enabled", "0")) == "1",
            replicas=int(info.get("connected_slaves") or 0),
        )

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
    """One reading: the facts, or why INFO could not be read."""

    facts: RedisFacts | None
    error: str | None = None

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
        return self.risks

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

    def get(self, client: Redis) -> RedisCheck:
        now = self.clock()
        if self._last is None or now - self._last[0] >= self.max_age_s:
            self._last = (now, read_check(client))
        return self._last[1]

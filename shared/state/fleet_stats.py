"""Fleet-wide event counts in one Redis hash, for the metric summary of ``GET /v1/health``.

Prometheus counters live per process (each worker has its own scrape port), so no single
process can sum them for the status page; these counts are shared by the whole fleet. Jobs
by terminal status and submitted jobs (also per door: ``door_jobs_<door>``) are counted
inside the Lua scripts that make the change (exact, once per job); the rarer events below
are counted where they happen, error answers per door (``door_errors_<door>``) by the API
as each answer leaves.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

from shared.keys import Keys

log = logging.getLogger(__name__)

RETRIES = "retries"
RATE_LIMITED = "rate_limited"
CACHE_HITS = "cache_hits"


DOOR_JOBS = "door_jobs_"  # + door: queued jobs created by that door (create.lua)
DOOR_ERRORS = "door_errors_"  # + door: error answers (status >= 400) at that door


def fallback(kind: str) -> str:
    return f"fallback_{kind}"


def door_errors(door: str) -> str:
    return f"{DOOR_ERRORS}{door}"


class FleetStats:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.key = client, keys.stats

    def add(self, field: str, n: int = 1) -> None:
        """Count an event; a count is never worth failing the request or job over."""
        try:
            pipe = self.r.pipeline(transaction=False)
            pipe.hincrby(self.key, field, n)
            pipe.hsetnx(self.key, "since", int(time.time()))
            pipe.execute()
        except RedisError as exc:
            log.debug("fleet stats not counted: %s", type(exc).__name__)

    def door_error(self, door: str) -> None:
        """Count an error answer at an API door (``shared.metrics.door_of``)."""
        self.add(door_errors(door))

    def read(self) -> dict[str, int]:
        raw: dict[str, str] = self.r.hgetall(self.key)  # type: ignore[assignment]
        return {str(k): int(v) for k, v in raw.items()}

"""Worker heartbeats, and the index the status pages find them by.

Each live worker process keeps a string with a TTL (``Keys.worker_heartbeat``): it exists exactly
while the worker lives (whoever asks "is worker X alive?" asks ``EXISTS``). Beside it, a sorted
set of worker names scored by their last beat (``Keys.workers``), written in the same step
(``worker_beat.lua``), so that listing the fleet is one ZRANGEBYSCORE and one MGET: never a scan
of the keyspace, which with millions of job records costs seconds on every probe.

The index may briefly name a worker whose heartbeat has expired (killed, not stopped): readers
skip a name without a heartbeat, and the next beat of any worker trims it. Scores are the
workers' clocks, read against the reader's: like leases, this assumes clocks within seconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from shared import lua
from shared.keys import Keys


def heartbeat_ttl_s(interval_s: float) -> int:
    """A heartbeat's lifetime: it survives two missed beats."""
    return int(interval_s * 3) + 1


class WorkerBeats:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._beat = client.register_script(lua.source("worker_beat"))

    def beat(self, worker: str, inflight: dict[str, int], ttl_s: int) -> None:
        """``worker`` is alive, with these calls in flight per provider."""
        value = json.dumps({"ts": round(time.time(), 3), "inflight": inflight})
        self._beat(
            keys=[self.keys.worker_heartbeat(worker), self.keys.workers],
            args=[worker, value, ttl_s, time.time()],
        )

    def leave(self, worker: str) -> None:
        """``worker`` is stopping: gone from the fleet at once, not when its heartbeat expires."""
        self._beat(keys=[self.keys.worker_heartbeat(worker), self.keys.workers], args=[worker, ""])

    def count(self, ttl_s: int) -> int:
        """Workers that beat within a heartbeat's TTL (one command; no heartbeat is read)."""
        return int(self.r.zcount(self.keys.workers, time.time() - ttl_s, "+inf"))

    def live(self, ttl_s: int) -> list[dict[str, Any]]:
        """Each live worker: ``id`` (``host:pid``), ``last_seen``, ``inflight`` per provider."""
        found = self.r.zrangebyscore(self.keys.workers, time.time() - ttl_s, "+inf")
        names = [str(n) for n in found]
        if not names:
            return []
        beats = self.r.mget([self.keys.worker_heartbeat(n) for n in names])
        out = []
        for name, raw in zip(names, beats, strict=True):
            try:
                beat = json.loads(str(raw)) if raw else None
            except ValueError:
                beat = None
            if isinstance(beat, dict):
                out.append(
                    {
                        "id": name,
                        "last_seen": beat.get("ts"),
                        "inflight": beat.get("inflight") or {},
                    }
                )
        return out

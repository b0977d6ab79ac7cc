"""Fair share across API keys within a priority (docs/architecture.md "Priorities and fair share").

Celery's queues are FIFO, so a key that queues 50,000 jobs at a priority would be served
before another key's first. Instead each key has a window per priority: at most
``queue.fair_window`` x its ``weight`` of its jobs are in the broker (released, not yet
begun) at once. A job created while its key's window is full is held in the key's backlog in
Redis (``create.lua``); as each of the key's jobs begins (``begin.lua`` takes it out of the
window) the worker releases the key's next held jobs (``fair_release.lua``), and the fair
sweep (a fleet duty) releases whatever a lost worker did not. The broker's FIFO then only
ever holds a fair mix: each key's share of it, and so of the workers, is its window.

Written here rather than taken from a library: the window must be exact across every API
and worker process, so it is kept in Redis and changed only by Lua scripts, and no
Celery-level rate limit can express "per key, per priority, released as jobs begin".
"""

from __future__ import annotations

from typing import Any

import redis

from shared import lua
from shared.config.settings import Settings
from shared.keys import Keys
from shared.state.job_record import PRIORITIES


def room(settings: Settings, owner: str) -> int:
    """The key's window: ``queue.fair_window`` x its ``weight`` (at least 1); 0 when fair
    share is off."""
    window = settings.queue.fair_window
    if window <= 0:
        return 0
    return max(1, round(window * settings.weight_of(owner)))


class FairShare:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._release = client.register_script(lua.source("fair_release"))

    def release(
        self,
        priority: str,
        owner: str,
        window: int,
        stale_before: float,
        now: float,
        queue: str,
        message: bytes | None,
        group_ttl_ms: int,
    ) -> list[str]:
        """Release up to the key's free room of its held jobs. With ``message`` (a group
        message: the broker is this Redis) they join ``queue``'s group in the same step;
        without, the caller publishes each id returned."""
        k = self.keys
        ids: Any = self._release(
            keys=[
                k.fair_window(priority, owner),
                k.fair_backlog(priority, owner),
                k.fair_owners(priority),
                k.fair_held(priority),
                k.pending(priority),
                k.broker_queue(queue),
                k.group(queue),
                k.group_sent(queue),
            ],
            args=[window, now, owner, stale_before, message or "", group_ttl_ms],
        )
        return [str(i) for i in ids]

    def backlogged(self, priority: str) -> list[str]:
        """The keys with held jobs at ``priority``."""
        return sorted(str(o) for o in self.r.smembers(self.keys.fair_owners(priority)))

    def held(self) -> dict[str, int]:
        """Held jobs per priority (every key's backlog)."""
        pipe = self.r.pipeline(transaction=False)
        for p in PRIORITIES:
            pipe.get(self.keys.fair_held(p))
        return {p: int(v or 0) for p, v in zip(PRIORITIES, pipe.execute(), strict=True)}

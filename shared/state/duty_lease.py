"""A fenced lease: at most one holder of a named duty across the fleet, on Redis's clock.

The holder renews it well within its TTL (``renew()``), and only the holder can give it up
(``release()``): both are one Lua script that compares the token first, so a holder that
stalled past its TTL can neither extend nor delete the lease its successor took. Each time the
lease changes hands its fence number grows; a holder reads it back on every renewal, and
``held`` turns false the moment a renewal finds the lease gone or taken.

Why not redis-py's ``Lock``: it has no fence number, and its ``extend`` is refused once the
lock expired, with no way to tell "lost to another" from a Redis blip; here a blip keeps
``held`` as it was until the TTL has surely passed.
"""

from __future__ import annotations

import secrets
import time

from redis import Redis
from redis.exceptions import RedisError

from shared import lua
from shared.keys import Keys


def holder_of(value: str | None) -> str | None:
    """The ``holder`` part of a lease's stored value (``holder/random:fence``)."""
    if not value or "/" not in value:
        return None
    return value.rsplit("/", 1)[0]


class DutyLease:
    def __init__(
        self, client: Redis, keys: Keys, name: str, ttl_s: float, holder: str = ""
    ) -> None:
        """``holder`` names the process in the lease (``host:pid``), for operators and tests."""
        self.name = name
        self.ttl_ms = max(100, int(ttl_s * 1000))
        self.token = f"{holder or 'anon'}/{secrets.token_hex(8)}"
        self.fence = 0  # the fence of the lease while held, else 0
        self._key, self._fence_key = keys.duty(name), keys.duty_fence(name)
        self._acquire = client.register_script(lua.source("duty_acquire"))
        self._release = client.register_script(lua.source("duty_release"))
        self._valid_until = 0.0  # monotonic: the latest moment the lease is surely still ours

    @property
    def held(self) -> bool:
        return self.fence > 0 and time.monotonic() < self._valid_until

    def _call(self, may_take: bool) -> bool:
        sent = time.monotonic()
        try:
            fence = self._acquire(
                keys=[self._key, self._fence_key],
                args=[self.token, self.ttl_ms, "1" if may_take else "0"],
            )
        except RedisError:
            # Unknown outcome: still ours until the TTL from the last success has passed.
            if not self.held:
                self.fence = 0
            raise
        if fence:
            self.fence = int(fence)
            self._valid_until = sent + self.ttl_ms / 1000.0
        else:
            self.fence = 0
        return self.fence > 0

    def acquire(self) -> bool:
        """Take the lease if it is free, or renew it if this holder has it."""
        return self._call(may_take=True)

    def renew(self) -> bool:
        """Extend the lease if this holder still has it (never takes a free one)."""
        return self._call(may_take=False)

    def release(self) -> bool:
        """Give the lease up (another worker may take it at once); False if it was not ours."""
        if not self.fence:
            return False
        fence, self.fence = self.fence, 0
        return bool(self._release(keys=[self._key], args=[self.token, fence]))

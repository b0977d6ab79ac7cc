"""Provider quotas shared by the whole worker fleet: ``providers.<name>.rpm`` and
``providers.<name>.max_concurrent`` (``quota_acquire.lua``).

A call takes a slot before it starts and gives it back when it ends; a worker that dies
mid-call frees its slot when the slot expires (the provider's timeout plus a margin). A job
whose every deployment is over quota is parked until the earliest one frees, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from shared import lua
from shared.config.settings import ProviderSettings
from shared.keys import Keys

SLOT_MARGIN_S = 5.0


@dataclass(frozen=True)
class QuotaGrant:
    allowed: bool
    limit: str  # ok | rpm | concurrent
    retry_after_s: float
    member: str


class ProviderQuotas:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._acquire = client.register_script(lua.with_library("quota_acquire", "gcra"))
        self._adjust = client.register_script(lua.with_library("ratelimit_adjust", "gcra"))

    @staticmethod
    def limited(provider: ProviderSettings) -> bool:
        return bool(provider.rpm or provider.max_concurrent)

    def acquire(self, provider: ProviderSettings, member: str) -> QuotaGrant:
        if not self.limited(provider):
            return QuotaGrant(True, "ok", 0.0, member)
        res = self._acquire(
            keys=[
                self.keys.quota(provider.name, "rpm"),
                self.keys.quota(provider.name, "concurrent"),
            ],
            args=[
                provider.rpm or 0,
                provider.max_concurrent or 0,
                member,
                int((provider.timeout_s + SLOT_MARGIN_S) * 1000),
            ],
        )
        limit = res[1].decode() if isinstance(res[1], bytes) else str(res[1])
        return QuotaGrant(bool(res[0]), limit, int(res[2]) / 1000, member)

    def release(self, provider: ProviderSettings, grant: QuotaGrant, called: bool) -> None:
        """End the call's slot; ``called=False`` also gives back its request (never sent)."""
        if not grant.allowed or not self.limited(provider):
            return
        if provider.max_concurrent:
            self.r.zrem(self.keys.quota(provider.name, "concurrent"), grant.member)
        if not called and provider.rpm:
            self._adjust(keys=[self.keys.quota(provider.name, "rpm")], args=[provider.rpm, -1])

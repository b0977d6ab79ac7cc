"""Which Redis settings, as INFO reports them, could lose accepted jobs (shared/redis_checks.py)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ResponseError

from shared.redis_checks import CachedCheck, RedisCheck, RedisFacts, read_check

SAFE: dict[str, Any] = {
    "redis_version": "7.2.4",
    "maxmemory_policy": "noeviction",
    "aof_enabled": 1,
    "role": "master",
    "connected_slaves": 0,
}


def facts(**info: Any) -> RedisFacts:
    return RedisFacts.from_info({**SAFE, **info})


def test_aof_on_noeviction_and_a_recent_version_is_no_risk() -> None:
    assert facts().risks() == []
    assert not facts().evicting


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-ttl", "allkeys-random"]
)
def test_every_policy_but_noeviction_is_evicting(policy: str) -> None:
    found = facts(maxmemory_policy=policy)
    assert found.evicting
    assert [f"maxmemory-policy is {policy}" in r for r in found.risks()] == [True]


def test_no_aof_is_a_risk_only_without_a_connected_replica() -> None:
    alone = facts(aof_enabled=0)
    assert ["appendonly is off" in r for r in alone.risks()] == [True]
    assert facts(aof_enabled=0, connected_slaves=2).risks() == []


def test_a_redis_older_than_5_is_a_risk() -> None:
    old = facts(redis_version="4.0.14")
    assert ["older than 5" in r for r in old.risks()] == [True]
    assert facts(redis_version="5.0.0").risks() == []


class RefusesInfo:
    """A Redis that refuses INFO (renamed or forbidden, as some managed services do)."""

    def pipeline(self, transaction: bool = True) -> RefusesInfo:
        return self

    def info(self, section: str) -> None:
        pass

    def execute(self) -> list[Any]:
        raise ResponseError("unknown command 'INFO'")


def test_an_unreadable_info_is_a_warning_not_a_risk() -> None:
    check = read_check(RefusesInfo())  # type: ignore[arg-type]
    assert check.facts is None and check.risks == []
    assert check.warnings and "INFO" in check.warnings[0]
    assert check.refusal(allow_eviction=False) is None


def test_an_evicting_redis_is_refused_unless_allowed() -> None:
    assert RedisCheck(facts()).refusal(allow_eviction=False) is None
    evicting = RedisCheck(facts(maxmemory_policy="volatile-lru"))
    refusal = evicting.refusal(allow_eviction=False)
    assert refusal is not None and "redis.allow_eviction" in refusal
    assert "maxmemory-policy" in refusal
    assert evicting.refusal(allow_eviction=True) is None


class GrowingRedis:
    """INFO answers of a Redis whose used_memory the test sets."""

    def __init__(self, **info: Any) -> None:
        self.info_now: dict[str, Any] = {**SAFE, **info}

    def pipeline(self, transaction: bool = True) -> GrowingRedis:
        return self

    def info(self, section: str) -> None:
        pass

    def execute(self) -> list[Any]:
        return [dict(self.info_now)]


def test_a_redis_that_fills_within_a_day_at_its_growth_is_a_warning() -> None:
    now = [0.0]
    redis = GrowingRedis(used_memory=1_000_000_000, maxmemory=4_000_000_000)
    cached = CachedCheck(max_age_s=10, clock=lambda: now[0])
    first = cached.get(redis)  # type: ignore[arg-type]
    assert first.growth is None and first.memory_warning() is None
    # 100 kB/s for ten minutes: 3 GB left fill in ~8.3 h.
    for _ in range(60):
        now[0] += 10
        redis.info_now["used_memory"] += 1_000_000
    check = cached.get(redis)  # type: ignore[arg-type]
    assert check.growth == pytest.approx(100_000)
    assert check.fills_in_s == pytest.approx((4_000_000_000 - 1_060_000_000) / 100_000)
    warning = check.memory_warning()
    assert warning is not None and "maxmemory" in warning and "8.2 h" in warning
    assert warning in check.warnings and warning not in check.risks


def test_a_slow_growth_or_no_limit_known_is_no_warning() -> None:
    now = [0.0]
    redis = GrowingRedis(used_memory=1_000_000, maxmemory=0, total_system_memory=0)
    cached = CachedCheck(max_age_s=10, clock=lambda: now[0])
    for _ in range(60):
        now[0] += 10
        redis.info_now["used_memory"] += 1_000_000
        check = cached.get(redis)  # type: ignore[arg-type]
    assert check.fills_in_s is None and check.memory_warning() is None  # no limit known
    redis.info_now["total_system_memory"] = 10**13  # years away at this rate
    now[0] += 10
    check = cached.get(redis)  # type: ignore[arg-type]
    assert check.fills_in_s is not None and check.fills_in_s > 86400
    assert check.memory_warning() is None

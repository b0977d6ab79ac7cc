"""The limiter scripts against a real redis-server: per-key GCRA, tokens, concurrency slots,
provider quotas and the bounded response cache."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from shared.config.settings import CacheSettings, ProviderSettings
from shared.keys import Keys
from shared.state.cache import ResponseCache
from shared.state.quota import ProviderQuotas
from shared.state.ratelimit import KeyLimits, RateLimiter

KEYS = Keys("gw")


@pytest.fixture
def r(redis_db: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_db)
    yield client
    client.close()


def test_rpm_admits_a_burst_of_n_then_one_every_60_over_n(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=6, tpm=None, max_concurrent=None)  # one every 10 s
    verdicts = [limiter.check("k", limits) for _ in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 6 + [False]
    assert [v.rpm_remaining for v in verdicts[:6]] == [5, 4, 3, 2, 1, 0]
    refused = verdicts[6]
    assert refused.reason == "rpm"
    assert 9.0 < refused.retry_after_s <= 10.0
    assert 59.0 < verdicts[5].rpm_reset_s <= 60.0  # full again a minute after the burst
    headers = verdicts[0].headers()
    assert headers["x-ratelimit-limit-requests"] == "6"
    assert headers["x-ratelimit-remaining-requests"] == "5"
    assert "x-ratelimit-limit-tokens" not in headers
    # Another key has its own bucket.
    assert limiter.check("other", limits).allowed


def test_rpm_frees_one_request_per_interval(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=120, tpm=None, max_concurrent=None)  # one every 0.5 s
    assert all(limiter.check("k", limits).allowed for _ in range(120))
    assert not limiter.check("k", limits).allowed
    time.sleep(0.55)
    assert limiter.check("k", limits).allowed
    assert not limiter.check("k", limits).allowed


def test_peeking_takes_nothing(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=2, tpm=100, max_concurrent=None)
    for _ in range(5):
        peek = limiter.check("k", limits, consume=False)
        assert peek.rpm_remaining == 2 and peek.tpm_remaining == 100
    assert limiter.check("k", limits, tokens=10).allowed


def test_tokens_per_minute_estimate_then_correction(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=None, tpm=1000, max_concurrent=None)
    first = limiter.check("k", limits, tokens=600)
    assert first.allowed and first.tpm_remaining == 400
    over = limiter.check("k", limits, tokens=600)
    assert not over.allowed and over.reason == "tpm" and over.retry_after_s > 0
    # The call used 100 tokens, not 600: the bucket gets 500 back.
    limiter.adjust_tokens("k", 1000, 100 - 600)
    assert limiter.check("k", limits, tokens=600).allowed
    too_large = limiter.check("k", limits, tokens=1001)
    assert not too_large.allowed and too_large.reason == "too_large"


def test_refused_request_takes_nothing_from_the_other_limits(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=10, tpm=100, max_concurrent=None)
    assert limiter.check("k", limits, tokens=100).allowed
    refused = limiter.check("k", limits, tokens=50)
    assert refused.reason == "tpm"
    # The refused request did not spend a request of the rpm budget.
    assert limiter.check("k", limits, consume=False).rpm_remaining == 9


def test_concurrency_slots_free_when_their_job_ends(r: redis.Redis) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=None, tpm=None, max_concurrent=2)
    for job in ("job_a", "job_b"):
        r.hset(KEYS.job(job), "status", "queued")
        assert limiter.check("k", limits, job_id=job).allowed
    refused = limiter.check("k", limits, job_id="job_c")
    assert not refused.allowed and refused.reason == "concurrency"
    r.hset(KEYS.job("job_a"), "status", "succeeded")
    assert limiter.check("k", limits, job_id="job_c").allowed
    assert r.zrange(KEYS.ratelimit("k", "concurrent"), 0, -1) == [b"job_b", b"job_c"]
    limiter.release("k", "job_c")
    assert limiter.check("k", limits, job_id="job_d").allowed


def test_a_slot_whose_process_died_before_creating_the_job_frees_itself(
    r: redis.Redis,
) -> None:
    limiter = RateLimiter(r, KEYS)
    limits = KeyLimits(rpm=None, tpm=None, max_concurrent=1)
    assert limiter.check("k", limits, job_id="job_never_created", orphan_ms=300).allowed
    assert not limiter.check("k", limits, job_id="job_x", orphan_ms=300).allowed
    time.sleep(0.35)
    assert limiter.check("k", limits, job_id="job_x", orphan_ms=300).allowed


def _provider(**kw: object) -> ProviderSettings:
    return ProviderSettings(name="p", type="mock", base_url="http://x", **kw)  # type: ignore[arg-type]


def test_provider_quota_concurrency_release_and_expiry(r: redis.Redis) -> None:
    quotas = ProviderQuotas(r, KEYS)
    p = _provider(max_concurrent=2, timeout_s=0.2)
    a, b = quotas.acquire(p, "a"), quotas.acquire(p, "b")
    assert a.allowed and b.allowed
    c = quotas.acquire(p, "c")
    assert not c.allowed and c.limit == "concurrent"
    quotas.release(p, a, called=True)
    assert quotas.acquire(p, "c").allowed
    # A worker that died mid-call: its slot expires after the timeout plus the margin.
    r.zadd(KEYS.quota("p", "concurrent"), {"b": 0, "c": 0})  # as if long expired
    assert quotas.acquire(p, "d").allowed and quotas.acquire(p, "e").allowed


def test_provider_quota_rpm_and_refund_of_an_unmade_call(r: redis.Redis) -> None:
    quotas = ProviderQuotas(r, KEYS)
    p = _provider(rpm=3)
    grants = [quotas.acquire(p, str(i)) for i in range(4)]
    assert [g.allowed for g in grants] == [True, True, True, False]
    assert grants[3].limit == "rpm" and 19 < grants[3].retry_after_s <= 20
    quotas.release(p, grants[2], called=False)  # the breaker refused: no call was made
    assert quotas.acquire(p, "x").allowed
    assert quotas.acquire(p, "y").allowed is False
    assert quotas.acquire(_provider(), "free").allowed  # no quota configured


def _cache(r: redis.Redis, **kw: object) -> ResponseCache:
    return ResponseCache(r, KEYS, CacheSettings(**kw))  # type: ignore[arg-type]


def test_cache_round_trip_is_per_tenant(r: redis.Redis) -> None:
    cache = _cache(r)
    req = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    cache.put("team-a", req, {"id": "c1"}, "mock")
    entry = cache.fresh("team-a", req, None)
    assert entry is not None and entry.result == {"id": "c1"} and entry.provider == "mock"
    assert cache.fresh("team-b", req, None) is None
    # max-age narrower than the entry's age: not fresh enough.
    time.sleep(0.05)
    assert cache.fresh("team-a", req, 0.01) is None
    assert cache.stale("team-a", req) is not None


def test_cache_is_bounded_by_entries_and_bytes_oldest_first(r: redis.Redis) -> None:
    cache = _cache(r, max_entries=3, max_bytes=10_000)
    reqs = [{"model": "m", "messages": [{"role": "user", "content": str(i)}]} for i in range(5)]
    for req in reqs:
        cache.put("t", req, {"n": 1}, None)
    assert [cache.get("t", q) is not None for q in reqs] == [False, False, True, True, True]
    assert r.zcard(KEYS.cache_index) == 3

    r.flushdb()
    big = {"text": "x" * 3000}
    cache = _cache(r, max_entries=100, max_bytes=7000)
    for req in reqs[:3]:
        cache.put("t", req, big, None)
    assert [cache.get("t", q) is not None for q in reqs[:3]] == [False, True, True]
    sizes = r.hgetall(KEYS.cache_sizes)
    total = int(sizes.pop(b"#total"))
    assert total == sum(int(v) for v in sizes.values()) <= 7000
    # Replacing an entry does not count it twice.
    cache.put("t", reqs[2], big, None)
    sizes = r.hgetall(KEYS.cache_sizes)
    again = int(sizes.pop(b"#total"))
    assert again == sum(int(v) for v in sizes.values()) and abs(again - total) < 10
    assert r.zcard(KEYS.cache_index) == len(sizes) == 2
    # An answer larger than the whole cache is not stored.
    cache.put("t", reqs[4], {"text": "y" * 8000}, None)
    assert cache.get("t", reqs[4]) is None

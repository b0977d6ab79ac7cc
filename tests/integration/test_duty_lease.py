"""The fenced duty lease against a real Redis, raced from several OS processes."""

from __future__ import annotations

import multiprocessing
import time

import redis

from shared.keys import Keys
from shared.state.duty_lease import DutyLease, holder_of

KEYS = Keys("race")
ROUNDS = 300


def _contend(url: str, who: int, start_at: float) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    lease = DutyLease(client, KEYS, "race", ttl_s=1.0, holder=f"p{who}")
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(ROUNDS):
        if lease.acquire():
            # Under the lease: note who holds this fence.
            client.sadd(f"race:fence:{lease.fence}", who)
            if i % 7 == 0:
                lease.release()


def test_processes_racing_for_a_duty_never_share_a_fence(
    redis_db: str,
) -> None:
    start_at = time.time() + 0.5
    procs = [
        multiprocessing.get_context("spawn").Process(target=_contend, args=(redis_db, n, start_at))
        for n in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    fences = [k for k in client.scan_iter(match="race:fence:*")]
    assert len(fences) > 4  # the lease changed hands many times
    for key in fences:
        assert client.scard(key) == 1, f"{key} was held by two processes"
    fence_numbers = sorted(int(k.rsplit(":", 1)[1]) for k in fences)
    assert fence_numbers == sorted(set(fence_numbers))


def test_only_the_holder_renews_or_releases_and_a_lapsed_lease_moves_on(redis_db: str) -> None:
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    a = DutyLease(client, KEYS, "d", ttl_s=0.3, holder="host:1")
    b = DutyLease(client, KEYS, "d", ttl_s=0.3, holder="host:2")
    assert a.acquire() and a.held
    assert holder_of(client.get(KEYS.duty("d"))) == "host:1"
    assert not b.acquire() and not b.renew() and not b.release()
    assert a.renew() and a.held
    first = a.fence
    deadline = time.time() + 5
    while client.exists(KEYS.duty("d")) and time.time() < deadline:  # a stalls past its TTL
        time.sleep(0.05)
    assert b.acquire() and b.fence > first
    assert not a.renew() and not a.held  # the stalled holder finds it gone
    assert not a.release()
    assert holder_of(client.get(KEYS.duty("d"))) == "host:2"
    assert b.release()
    assert not client.exists(KEYS.duty("d"))

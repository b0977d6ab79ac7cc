"""The circuit breaker's transitions against a real Redis, raced across processes."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
import redis

from shared.config.settings import BreakerSettings
from shared.keys import Keys
from shared.state.breaker import CLOSED, HALF_OPEN, OPEN, Breakers
from tests.support.stack import KEYS

S = BreakerSettings(
    consecutive_failures=3,
    failure_rate=0.5,
    min_calls=10,
    window_s=30,
    open_s=0.5,
    probe_timeout_s=0.5,
)


@pytest.fixture
def breakers(redis_db: str) -> Breakers:
    return Breakers(redis.Redis.from_url(redis_db, decode_responses=True), Keys("gw"), S)


def test_consecutive_failures_open_it(breakers: Breakers) -> None:
    for _ in range(2):
        breakers.record("p", False)
    assert breakers.state("p")["state"] == CLOSED
    breakers.record("p", True)  # a success resets the run
    for _ in range(2):
        breakers.record("p", False)
    assert breakers.state("p")["state"] == CLOSED
    assert breakers.record("p", False) == OPEN
    assert not breakers.allow("p", "p").allowed


def test_failure_rate_over_the_window_opens_it(breakers: Breakers) -> None:
    for i in range(10):  # alternate: never 3 in a row, but a 50% failure rate over 10 calls
        breakers.record("p", i % 2 == 0)
    assert breakers.state("p")["state"] == OPEN


def test_rate_needs_min_calls(breakers: Breakers) -> None:
    for i in range(8):
        breakers.record("p", i % 2 == 0)
    assert breakers.state("p")["state"] == CLOSED


def test_half_open_probe_closes_or_reopens(breakers: Breakers) -> None:
    for _ in range(3):
        breakers.record("p", False)
    time.sleep(0.55)
    assert breakers.state("p")["state"] == HALF_OPEN
    probe = breakers.allow("p", "p")
    assert probe.allowed and probe.probe_token
    assert not breakers.allow("p", "p").allowed  # only one probe
    assert breakers.record("p", False, probe.probe_token) == OPEN
    time.sleep(0.55)
    probe = breakers.allow("p", "p")
    assert breakers.record("p", True, probe.probe_token) == CLOSED
    assert breakers.allow("p", "p").allowed and not breakers.allow("p", "p").probe_token


def test_an_expired_probe_lease_lets_another_probe(breakers: Breakers) -> None:
    for _ in range(3):
        breakers.record("p", False)
    time.sleep(0.55)
    assert breakers.allow("p", "p").probe_token  # its holder dies: never records
    assert not breakers.allow("p", "p").allowed
    time.sleep(0.55)  # probe_timeout_s
    assert breakers.allow("p", "p").probe_token


def test_a_late_result_from_a_lost_probe_changes_nothing(breakers: Breakers) -> None:
    for _ in range(3):
        breakers.record("p", False)
    time.sleep(0.55)
    stale = breakers.allow("p", "p").probe_token
    time.sleep(0.55)
    fresh = breakers.allow("p", "p").probe_token
    assert breakers.record("p", True, stale) == HALF_OPEN  # not the current probe
    assert breakers.record("p", True, fresh) == CLOSED


# The race's probe lease outlives any start-up: spawning four interpreters on a loaded machine
# may take longer than S's 0.5 s, and an expired lease rightly lets a second probe in.
RACE = BreakerSettings(**{**S.__dict__, "probe_timeout_s": 600})


def _race_for_probe(url: str, go: Any, out: multiprocessing.Queue) -> None:
    b = Breakers(redis.Redis.from_url(url, decode_responses=True), Keys("gw"), RACE)
    b.r.ping()  # connected before the start
    go.wait(60)
    out.put(sum(1 for _ in range(50) if b.allow("p", "p").probe_token))


def test_processes_racing_at_half_open_get_one_probe(redis_db: str) -> None:
    breakers = Breakers(redis.Redis.from_url(redis_db, decode_responses=True), Keys("gw"), RACE)
    for _ in range(3):
        breakers.record("p", False)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_race_for_probe, args=(redis_db, go, out)) for _ in range(4)]
    for p in procs:
        p.start()
    time.sleep(RACE.open_s + 0.05)  # the breaker is half-open when they start
    go.set()
    won = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert won == 1


def test_an_unhealthy_provider_is_refused(breakers: Breakers) -> None:
    breakers.r.hset(KEYS.health("p"), "healthy", "0")
    refused = breakers.allow("p", "p")
    assert not refused.allowed and refused.reason == "unhealthy"
    breakers.r.hset(KEYS.health("p"), "healthy", "1")
    assert breakers.allow("p", "p").allowed

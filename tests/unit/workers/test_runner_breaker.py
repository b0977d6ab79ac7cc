"""A delivery's first call trusts the breaker state begin.lua read with the lease only when
that state is closed, the provider healthy and the hint names this very breaker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from shared.keys import Keys
from shared.state.breaker import Admission
from shared.state.job_record import Job
from workers.runner import JobRunner

KEYS = Keys("gw")
HINT = f"{KEYS.breaker('p')}\n{KEYS.health('p')}"


class Breakers:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def allow(self, name: str, provider: str) -> Admission:
        self.asked.append(name)
        return Admission(False, reason="open")


def runner(peek: tuple[str, str] | None) -> tuple[JobRunner, Breakers]:
    breakers = Breakers()
    ctx: Any = SimpleNamespace(keys=KEYS, stores=SimpleNamespace(breakers=breakers, jobs=None))
    r = JobRunner(ctx)
    r.peek = peek
    return r, breakers


def job(hint: str = HINT) -> Job:
    return Job("job_1", "o", "running", "normal", "m", {}, 0.0, 1.0, breaker_hint=hint)


def test_a_closed_healthy_peek_admits_without_asking_once() -> None:
    r, breakers = runner(("closed", ""))
    assert r._admit(job(), "p", "p").allowed
    assert breakers.asked == []
    assert not r._admit(job(), "p", "p").allowed  # used once: the next call asks
    assert breakers.asked == ["p"]


def test_anything_else_asks_the_breaker() -> None:
    for peek, hint, name in [
        (("open", ""), HINT, "p"),  # not closed
        (("half_open", ""), HINT, "p"),
        (("closed", "0"), HINT, "p"),  # provider unhealthy
        (("closed", ""), HINT, "q"),  # another breaker than the hint's
        (("closed", ""), "", "p"),  # no hint
        (None, HINT, "p"),  # nothing read
    ]:
        r, breakers = runner(peek)
        assert not r._admit(job(hint), name, name).allowed
        assert breakers.asked == [name]

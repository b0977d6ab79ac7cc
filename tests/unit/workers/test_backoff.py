from __future__ import annotations

import random

from workers.backoff import decide, full_jitter


def test_full_jitter_is_bounded_by_the_exponential_ceiling_and_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = min(30.0, 1.0 * 2**attempt)
        samples = [full_jitter(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range


def kw(**over: object) -> dict:
    base = dict(
        retry_same=True,
        attempts_here=1,
        max_attempts=3,
        retry_after_s=None,
        base_s=1.0,
        cap_s=30.0,
        time_left_s=100.0,
    )
    base.update(over)
    return base


def test_retryable_errors_retry_until_max_attempts() -> None:
    assert decide(**kw()).retry
    assert decide(**kw(attempts_here=2)).retry
    assert not decide(**kw(attempts_here=3)).retry


def test_non_retryable_errors_move_on() -> None:
    assert not decide(**kw(retry_same=False)).retry


def test_retry_after_is_used_up_to_the_cap() -> None:
    assert decide(**kw(retry_after_s=2.0)).delay_s == 2.0
    beyond = decide(**kw(retry_after_s=31.0))
    assert not beyond.retry and "retry-after" in beyond.reason


def test_never_past_the_deadline() -> None:
    assert not decide(**kw(retry_after_s=5.0, time_left_s=4.0)).retry

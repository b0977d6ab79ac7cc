"""Retry delays: exponential backoff with full jitter.

Full jitter (delay = random(0, min(cap, base * 2**attempt))) spreads a fleet's retries so
they do not hit a recovering provider in waves; the same function Celery uses
(celery/utils/time.py, after AWS's "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def full_jitter(
    attempt: int, base_s: float, cap_s: float, rand: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry)."""
    ceiling = min(cap_s, base_s * (2**attempt))
    return (rand or random).uniform(0, ceiling)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool  # park the job and call the same deployment again after ``delay_s``
    delay_s: float = 0.0
    reason: str = ""


def decide(
    *,
    retry_same: bool,
    attempts_here: int,
    max_attempts: int,
    retry_after_s: float | None,
    base_s: float,
    cap_s: float,
    time_left_s: float,
) -> RetryDecision:
    """Retry the same deployment, or move on (fall back / fail)?

    A Retry-After longer than the cap means "fall back now"; a delay that would end past the
    job's deadline is no retry at all.
    """
    if not retry_same:
        return RetryDecision(False, reason="not retryable")
    if attempts_here >= max_attempts:
        return RetryDecision(False, reason="attempts exhausted")
    if retry_after_s is not None:
        if retry_after_s > cap_s:
            return RetryDecision(False, reason="retry-after beyond retry.max_delay_s")
        delay = retry_after_s
    else:
        delay = full_jitter(attempts_here - 1, base_s, cap_s)
    if delay >= time_left_s:
        return RetryDecision(False, reason="no time left before the deadline")
    return RetryDecision(True, delay)

"""A step a delivery cannot drop (taking a job, writing a provider's answer) retried while Redis
is unreachable: a restart or a failover delays it instead of losing it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shared.errors import BACKEND_DOWN

log = logging.getLogger(__name__)

# How long a delivery waits for an unreachable Redis to take or record a job before it gives
# up (the job is then found by the sweeps: pending redelivery, lease reaper).
REDIS_WAIT_S = 600.0


def until_redis_answers(what: str, job_id: str, step: Callable[[], Any]) -> Any:
    """Run ``step``, retrying while Redis is unreachable (a restart, a failover): a provider's
    answer in hand is written once Redis is back, not dropped."""
    deadline, delay, warned = time.monotonic() + REDIS_WAIT_S, 0.2, False
    while True:
        try:
            return step()
        except BACKEND_DOWN:
            if time.monotonic() >= deadline:
                raise
            if not warned:
                warned = True
                log.warning("Redis unreachable; %s waits for it", what, extra={"job_id": job_id})
            time.sleep(delay)
            delay = min(2.0, delay * 2)

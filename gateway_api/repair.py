"""Finish, in the background, a clean-up that Redis refused because it is unreachable.

When a request fails half-way because Redis went away (a job created but its publish failed,
an Idempotency-Key claimed for a job that was never created), the client already has its 503;
what is left to undo is retried here until Redis answers again, so nothing stays half-written:
no job left ``queued`` without a task, no key held for a job that does not exist.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

GIVE_UP_AFTER_S = 600.0
MAX_DELAY_S = 5.0


def soon(action: Callable[[], object], what: str, job_id: str | None = None) -> None:
    """Try ``action`` now; if it raises, retry it with backoff in the background."""
    try:
        action()
        return
    except Exception:
        log.warning("%s failed; retrying in the background", what, extra={"job_id": job_id})

    def loop() -> None:
        delay, deadline = 0.2, time.monotonic() + GIVE_UP_AFTER_S
        while time.monotonic() < deadline:
            time.sleep(delay)
            try:
                action()
                log.info("%s done after Redis came back", what, extra={"job_id": job_id})
                return
            except Exception:
                delay = min(MAX_DELAY_S, delay * 2)
        log.error("%s abandoned", what, extra={"job_id": job_id})

    threading.Thread(target=loop, name="repair", daemon=True).start()

"""The process's job slots: ``worker.concurrency`` counts jobs, not broker messages.

A group message (``workers/group.py``) carries many jobs into one Celery pool slot, so the
pool's limit no longer bounds the calls in flight. Every job, grouped or not, runs inside one
of these slots; a job waiting for a slot has not begun (no lease), so it is still in the
pending set, and a worker lost meanwhile costs it nothing but a redelivery.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class JobSlots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sem = threading.BoundedSemaphore(capacity)

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._sem:
            yield


SLOTS = JobSlots(500)


def configure(capacity: int) -> None:
    """Set this process's slots (``llm-gateway worker`` does, before the pool starts)."""
    global SLOTS
    SLOTS = JobSlots(max(1, capacity))

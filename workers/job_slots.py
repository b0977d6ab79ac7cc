"""The process's job slots: ``worker.concurrency`` counts jobs, not broker messages.

A group message (``workers/group.py``) carries many jobs into one Celery pool slot, so the
pool's limit no longer bounds the calls in flight. Every job, grouped or not, runs inside one
of these slots; a job waiting for a slot has not begun (no lease), so it is still in the
pending set. While it waits, this process claims it in Redis (``workers/waiting.py``), so the
pending sweep leaves it alone; if the process dies, the claim lapses within ``worker.lease_s``
and the sweep republishes the job for another worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class JobSlots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sem = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._wanted = 0  # jobs holding or waiting for a slot

    @contextmanager
    def slot(
        self, waiting: Callable[[], AbstractContextManager[object]] | None = None
    ) -> Iterator[None]:
        """Hold a slot while the body runs; ``waiting`` is entered only if the job must wait
        for one (the claim that tells the fleet this process holds the job)."""
        with self._lock:
            self._wanted += 1
        try:
            if not self._sem.acquire(blocking=False):
                with waiting() if waiting is not None else nullcontext():
                    self._sem.acquire()
            try:
                yield
            finally:
                self._sem.release()
        finally:
            with self._lock:
                self._wanted -= 1

    def free(self) -> int:
        """Slots nobody holds or waits for (a group takes no more jobs than this, at least
        one: a job taken waits for a slot no longer than a prefetched message would)."""
        return max(1, self.capacity - self._wanted)


SLOTS = JobSlots(500)


def configure(capacity: int) -> None:
    """Set this process's slots (``llm-gateway worker`` does, before the pool starts)."""
    global SLOTS
    SLOTS = JobSlots(max(1, capacity))

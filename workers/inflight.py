"""Provider calls in flight in this process, reported with the worker's heartbeat."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def call(self, provider: str) -> Iterator[None]:
        with self._lock:
            self._counts[provider] += 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[provider] -= 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._counts.items() if v}


IN_FLIGHT = InFlight()

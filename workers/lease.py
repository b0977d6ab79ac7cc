"""Keeps a job's lease alive while a worker runs it, and remembers which jobs this process
holds, so a shutting-down worker can give them back at once."""

from __future__ import annotations

import logging
import threading

from shared.jobs import JobStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, store: JobStore, job_id: str, token: str, lease_s: float) -> None:
        self.store, self.job_id, self.token, self.lease_s = store, job_id, token, lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = max(0.2, self.lease_s / 3)
        while not self._stop.wait(interval):
            try:
                if not self.store.renew(self.job_id, self.token, self.lease_s):
                    log.warning("lease lost", extra={"job_id": self.job_id})
                    self.lost.set()
                    return
            except Exception:  # Redis blip: the next tick tries again before the lease ends
                log.warning("lease renewal failed", extra={"job_id": self.job_id}, exc_info=True)

    def stop(self) -> None:
        self._stop.set()


class ActiveJobs:
    """job id -> lease token, for the jobs this process runs now."""

    def __init__(self) -> None:
        self._jobs: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, job_id: str, token: str) -> None:
        with self._lock:
            self._jobs[job_id] = token

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._jobs)


ACTIVE = ActiveJobs()
# Set when this worker process begins to stop: it takes no new job from then on (a message
# still fetched is handed back), so the jobs it releases cannot come back to it.
STOPPING = threading.Event()

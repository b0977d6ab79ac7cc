"""Keeps a job's lease alive while a worker runs it, and remembers which jobs this process
holds, so a shutting-down worker can give them back at once."""

from __future__ import annotations

import logging
import os
import threading
import time

from shared.state.jobs import JobStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    """One job's lease, kept alive by the process's renewer while the job runs."""

    def __init__(self, store: JobStore, job_id: str, token: str, lease_s: float) -> None:
        self.store, self.job_id, self.token, self.lease_s = store, job_id, token, lease_s
        self.lost = threading.Event()
        self.interval = max(0.2, lease_s / 3)
        self.due = 0.0

    def start(self) -> LeaseKeeper:
        RENEWER.add(self)
        return self

    def renew(self) -> None:
        try:
            if not self.store.renew(self.job_id, self.token, self.lease_s):
                log.warning("lease lost", extra={"job_id": self.job_id})
                self.lost.set()
                RENEWER.discard(self)
        except Exception:  # Redis blip: the next round tries again before the lease ends
            log.warning("lease renewal failed", extra={"job_id": self.job_id}, exc_info=True)

    def stop(self) -> None:
        RENEWER.discard(self)


class LeaseRenewer:
    """Renews every running job's lease from one thread per process.

    A thread per job cost a thread start (under gevent a greenlet and a hub cycle before the
    job could go on) and a wake-up per job; one loop over the jobs due costs neither, and
    the renewals of jobs due together share round trips (``shared/autopipeline.py``).
    """

    def __init__(self) -> None:
        self._keepers: set[LeaseKeeper] = set()
        self._lock = threading.Lock()
        self._pid = 0

    def add(self, keeper: LeaseKeeper) -> None:
        keeper.due = time.monotonic() + keeper.interval
        with self._lock:
            self._keepers.add(keeper)
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-renewer", daemon=True).start()

    def discard(self, keeper: LeaseKeeper) -> None:
        with self._lock:
            self._keepers.discard(keeper)

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                due = [k for k in self._keepers if k.due <= now]
                soonest = min((k.due for k in self._keepers), default=now + 0.2)
            for keeper in due:
                keeper.due = now + keeper.interval
            if due:
                threads = [threading.Thread(target=k.renew, daemon=True) for k in due]
                for t in threads:  # concurrently: one slow renewal holds no other back
                    t.start()
                for t in threads:
                    t.join()
                continue
            # A keeper added meanwhile is due an interval (seconds) from now: a nap of at
            # most 0.2 s never makes its renewal late.
            time.sleep(min(0.2, max(0.01, soonest - now)))


RENEWER = LeaseRenewer()


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

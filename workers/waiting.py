"""The jobs this worker process holds while they wait for a job slot, claimed in Redis.

A job waiting for a slot has been handed to this process by the broker but has not begun: the
broker will not hand it out again, and the pending sweep (``workers/reaper.py``) would take it
for lost. So the process claims it (``Keys.taken``, scored by when the claim lapses) and renews
the claims of all its waiting jobs in one write every ``worker.lease_s / 3``, as it renews
leases. ``begin.lua`` drops the claim when the job begins. If the process dies (SIGKILL, OOM,
its host cut off), the claims lapse within ``worker.lease_s`` and the sweep republishes those
jobs for another worker.

Only a job that must wait is claimed: a job that finds a free slot begins at once, with no
write of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from workers.context import WorkerContext

log = logging.getLogger(__name__)


class WaitingJobs:
    def __init__(self) -> None:
        self._ids: dict[str, str] = {}  # job id -> the queue whose group message it carries ("")
        self._lock = threading.Lock()
        self._ctx: WorkerContext | None = None
        self._pid = 0

    @contextmanager
    def hold(self, ctx: WorkerContext, job_id: str, group: str = "") -> Iterator[None]:
        """Claim ``job_id`` while the body waits for a slot; ``group``: the queue whose group
        message it carries (the first job of a group message), whose gathered jobs wait for it
        to begin: that group is claimed too (``Keys.group_held``)."""
        lease_s = ctx.settings.worker.lease_s
        with self._lock:
            self._ids[job_id] = group
            self._ctx = ctx
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._renew, name="waiting-claims", daemon=True).start()
        try:
            ctx.stores.jobs.hold_waiting([job_id], lease_s, [group] if group else [])
        except Exception:  # Redis blip: the renewal retries; meanwhile a sweep may republish
            log.warning("could not claim a waiting job", extra={"job_id": job_id})
        try:
            yield
        finally:
            with self._lock:
                self._ids.pop(job_id, None)

    def snapshot(self) -> tuple[list[str], list[str]]:
        """The jobs waiting, and the queues whose group message one of them carries."""
        with self._lock:
            return sorted(self._ids), sorted({q for q in self._ids.values() if q})

    def _renew(self) -> None:
        while True:
            ctx = self._ctx
            interval = max(0.2, ctx.settings.worker.lease_s / 3) if ctx else 1.0
            time.sleep(interval)
            ids, groups = self.snapshot()
            if ctx is None or not ids:
                continue
            try:
                ctx.stores.jobs.hold_waiting(ids, ctx.settings.worker.lease_s, groups)
            except Exception:  # the next round tries again before the claims lapse
                log.warning("could not renew the claims of waiting jobs", exc_info=True)


WAITING = WaitingJobs()

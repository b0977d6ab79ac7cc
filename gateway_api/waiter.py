"""Completion notices: one Redis subscription per API process wakes every local waiter.

A waiter registers, makes sure the subscription is live, then reads the job: a notice sent
after the read wakes it, one sent before is seen by the read. The process listens on the
fleet's done channel and on a channel of its own: a job created by a request that waits for
it here names that channel (``direct_channel``), so its notice wakes this process alone, not
every API process; a wait for any other job first marks the job watched (``wait``), which
sends its notice to the fleet's channel. It re-reads on every wake-up and
every few seconds, so a notice lost (e.g. across a Redis restart) only delays it. No Redis
connection per waiter. Works with threads and, once gevent has patched, with greenlets.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from shared.errors import BACKEND_DOWN, GatewayUnavailable
from shared.state import notice
from shared.state.job_record import Job

log = logging.getLogger(__name__)

RECHECK_S = 2.0


class CompletionHub:
    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        own_channel: Callable[[str], str] | None = None,
        watch: Callable[[str], object] | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self._own_channel_of = own_channel
        self._own = ""  # this process's channel (per pid: a forked child gets its own)
        self._watch = watch
        self._waiters: dict[str, set[threading.Event]] = {}
        # Outcomes that came with a notice (shared/state/notice.py), for jobs waited on here.
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._started = False
        self._pid = 0

    def _ensure_listener(self) -> None:
        import os

        with self._lock:
            if self._started and self._pid == os.getpid():
                return
            self._started, self._pid = True, os.getpid()
            self._subscribed.clear()
            if self._own_channel_of is not None:
                self._own = self._own_channel_of(f"{os.getpid()}-{secrets.token_hex(6)}")
        threading.Thread(target=self._listen, name="completion-listener", daemon=True).start()

    def direct_channel(self) -> str:
        """The channel to name in a job this process creates and waits for ("" : none)."""
        self._ensure_listener()
        return self._own

    def _listen(self) -> None:
        lost = False  # an outage is logged once, as it starts, and once as it ends
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=False)
            channels = [c for c in (self.channel, self._own) if c]
            try:
                pubsub.subscribe(*channels)
                for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        if int(message["data"]) < len(channels):
                            continue  # confirmed one channel; the other's confirmation follows
                        self._subscribed.set()
                        if lost:
                            lost = False
                            log.warning("completion listener reconnected to Redis")
                        self._wake_all()  # anything finished while we were away
                    elif message["type"] == "message":
                        self._wake(str(message["data"]))
            except Exception as exc:
                if not lost:
                    lost = True
                    log.warning("completion listener lost Redis (%s); reconnecting", exc)
                else:
                    log.debug("completion listener still reconnecting", exc_info=True)
                self._subscribed.clear()
                time.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _wake(self, message: str) -> None:
        job_id = notice.job_id_of(message)
        with self._lock:
            events = list(self._waiters.get(job_id, ()))
            if events and len(message) > len(job_id):
                outcome = notice.outcome_of(message)
                if outcome is not None:
                    self._outcomes[job_id] = outcome
        for ev in events:
            ev.set()

    def _wake_all(self) -> None:
        with self._lock:
            events = [ev for evs in self._waiters.values() for ev in evs]
        for ev in events:
            ev.set()

    @contextmanager
    def expect(self, job_id: str, published: bool = False) -> Iterator[Waiter]:
        """Register interest in a job, best before it is published (no notice can be missed),
        then ``wait`` on the yielded waiter. ``published``: the job may already be done."""
        self._ensure_listener()
        ev = threading.Event()
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(ev)
        try:
            # Subscribed before the job can finish: its notice will arrive, so the first read
            # can wait for it. Not yet subscribed, or already published: read first.
            yield Waiter(ev, self._subscribed.is_set() and not published)
        finally:
            with self._lock:
                evs = self._waiters.get(job_id)
                if evs is not None:
                    evs.discard(ev)
                    if not evs:
                        del self._waiters[job_id]
                        self._outcomes.pop(job_id, None)

    def wait(
        self, job_id: str, timeout: float, read: Callable[[], Job | None], notify: str = ""
    ) -> Job | None:
        """Wait up to ``timeout`` s for a job already published to be terminal. ``notify``:
        the job's own notice channel, as its record names it."""
        with self.expect(job_id, published=True) as waiter:
            self._subscribed.wait(min(timeout, 2.0))
            if notify and notify != self._own and self._watch is not None:
                # Its notice now reaches every process, this one too. Redis down: the
                # waiter's re-reads find the outcome once it is back.
                with contextlib.suppress(*BACKEND_DOWN):
                    self._watch(job_id)
            return waiter.wait(timeout, read, job_id)

    def wait_then_read(
        self,
        job_id: str,
        timeout: float,
        poll: Callable[[str], Job | None],
        read: Callable[[str], Job | None],
        notify: str = "",
    ) -> Job | None:
        """``wait``, re-reading the job with ``poll`` (a lean read: enough to tell whether it
        ended), then the job as ``read`` gives it, read once. None: the record is gone."""
        if self.wait(job_id, timeout, lambda: poll(job_id), notify) is None:
            return None
        try:
            return read(job_id)
        except BACKEND_DOWN as exc:
            raise _lost_redis(job_id) from exc

    def outcome(self, job_id: str) -> Job | None:
        """The job as its completion notice described it (no request, no attempts; the
        result as stored text in ``raw_result``), if a notice with an outcome came."""
        with self._lock:
            stored = self._outcomes.get(job_id)
        if stored is None:
            return None
        fields = dict(stored)
        raw = fields.pop("result", None)
        job = Job.from_hash({"id": job_id, "owner": "", "priority": "", "model": "", **fields})
        job.raw_result = raw
        return job

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._waiters.values())


class Waiter:
    def __init__(self, event: threading.Event, notice_guaranteed: bool) -> None:
        self.event = event
        self.notice_guaranteed = notice_guaranteed

    def wait(
        self, timeout: float, read: Callable[[], Job | None], job_id: str | None = None
    ) -> Job | None:
        """Until the job is terminal or ``timeout`` s pass; re-reads on every wake-up and every
        RECHECK_S, so a lost notice only delays it. Returns the last read.

        While Redis is unreachable it keeps waiting (the job runs on; its outcome is read once
        Redis is back); if Redis is still unreachable at the end, raises GatewayUnavailable
        naming ``job_id``."""
        deadline = time.monotonic() + timeout
        skip_read = self.notice_guaranteed
        job: Job | None = None
        down = False
        while True:
            if not skip_read:
                try:
                    job, down = read(), False
                except BACKEND_DOWN:
                    down = True
                if not down and (job is None or job.terminal):
                    return job
            skip_read = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.event.wait(min(remaining, RECHECK_S))
            self.event.clear()
        try:
            return job if job is not None and not down else read()
        except BACKEND_DOWN as exc:
            raise _lost_redis(job_id) from exc


def _lost_redis(job_id: str | None) -> GatewayUnavailable:
    return GatewayUnavailable(
        "The gateway lost its Redis while waiting for the job; it may still finish: "
        f"poll /v1/jobs/{job_id}."
        if job_id
        else "",
        job_id=job_id,
    )

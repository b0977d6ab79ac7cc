"""Worker process lifecycle: heartbeat while alive; on shutdown, give running jobs back.

docs/architecture.md "Recovery": a stopping worker stops consuming, lets in-flight calls
finish for up to ``worker.shutdown_grace_s``, then releases the leases of the rest so they
run again elsewhere at once (not after the visibility timeout), and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from shared.celery_app import enqueue
from shared.state.worker_beats import heartbeat_ttl_s
from workers.context import WorkerContext
from workers.health_checks import check_all
from workers.inflight import IN_FLIGHT
from workers.lease import ACTIVE

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def start_heartbeat(ctx: WorkerContext) -> threading.Event:
    """Beat every ``worker.heartbeat_s`` (the heartbeat and its index entry in one step:
    ``shared.state.worker_beats``) until the returned event is set; then leave the index."""
    stop = threading.Event()
    name = worker_name()
    interval = ctx.settings.worker.heartbeat_s
    ttl = heartbeat_ttl_s(interval)

    def beat() -> None:
        while True:
            try:
                ctx.stores.beats.beat(name, IN_FLIGHT.snapshot(), ttl)
            except Exception:
                log.warning("heartbeat failed", exc_info=True)
            if stop.wait(interval):
                break
        with contextlib.suppress(Exception):
            ctx.stores.beats.leave(name)

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()
    return stop


def release_all(ctx: WorkerContext) -> int:
    """Release every lease this process holds and republish those jobs."""
    released = 0
    for job_id, token in ACTIVE.snapshot().items():
        try:
            job = ctx.stores.jobs.get(job_id)
            if ctx.stores.jobs.release(job_id, token):
                enqueue(ctx.celery, job_id, job.priority if job else "normal")
                released += 1
        except Exception:
            log.exception("could not release job", extra={"job_id": job_id})
    return released


def schedule_forced_exit(ctx: WorkerContext, grace_s: float) -> None:
    """After the grace period, give back what still runs and leave."""

    def force() -> None:
        deadline = time.time() + grace_s
        while time.time() < deadline and ACTIVE.snapshot():
            time.sleep(0.1)
        if ACTIVE.snapshot():
            n = release_all(ctx)
            log.warning("shutdown grace over; released %d running job(s)", n)
        else:
            # Everything finished: Celery normally completes its own shutdown well within the
            # grace. It cannot when the broker is gone (kombu keeps trying to reach it), so
            # the process leaves at the deadline regardless: a stop must not hang.
            time.sleep(max(0.0, deadline - time.time()))
            log.warning("shutdown grace over; leaving without the broker's goodbye")
        logging.shutdown()
        os._exit(0)

    spawn(force, "shutdown-grace")
    _watchdog(grace_s + WATCHDOG_MARGIN_S)


# The greenlet above gives running jobs back; it cannot run if the gevent hub is stuck (a
# blocking call, a greenlet that never yields). A stop must be bounded whatever the hub does,
# so an OS thread (gevent's unpatched one) ends the process a little later. Jobs it leaves
# leased run again when their lease expires (sweep_leases): late, never lost.
WATCHDOG_MARGIN_S = 2.0
_watchdog_started = False


def _watchdog(after_s: float) -> None:
    global _watchdog_started
    if _watchdog_started:
        return
    _watchdog_started = True
    from gevent import monkey

    start_thread = monkey.get_original("_thread", "start_new_thread")
    sleep = monkey.get_original("time", "sleep")

    def leave() -> None:
        sleep(after_s)
        os.write(2, b"shutdown watchdog: the worker did not stop in time; leaving\n")
        os._exit(1)

    start_thread(leave, ())


def spawn(target: Callable[[], None], name: str) -> None:
    """Start ``target`` in the background, also from a signal handler running in gevent's hub
    (where starting a thread would block and raise BlockingSwitchOutError)."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        gevent.spawn(target)
    else:
        threading.Thread(target=target, name=name, daemon=True).start()


def test_providers(ctx: WorkerContext) -> None:
    """At startup, test and log each provider's connectivity (in the background)."""
    s = ctx.settings

    def run() -> None:
        try:
            results = check_all(
                dict(s.providers), ctx.stores.health, s.health.timeout_s, s.health.interval_s
            )
            for name, ok in results.items():
                log.info(
                    "provider %s %s",
                    name,
                    "reachable" if ok else "NOT reachable",
                    extra={"provider": name, "healthy": ok},
                )
        except Exception:
            log.warning("startup provider test failed", exc_info=True)

    spawn(run, "provider-test")

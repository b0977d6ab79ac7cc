"""The Celery app for ``celery -A workers.celery_worker`` and ``llm-gateway worker|beat``.

Every worker process runs the fleet's duties itself (``workers.duties``) from the moment it is
ready; the beat schedule below only matters to an operator who runs the optional beat.
"""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery, signals

from shared.celery_app import (
    CONTROL_QUEUE,
    DUE_SWEEP_INTERVAL_S,
    TASK_HEALTH_CHECK,
    TASK_SWEEP_DUE,
    TASK_SWEEP_LEASES,
    TASK_SWEEP_PENDING,
)
from workers import (
    broker_wakeup,
    tasks,  # noqa: F401  (registers the tasks)
)
from workers.context import get_context
from workers.duties import FleetDuties
from workers.lease import STOPPING
from workers.lifecycle import schedule_forced_exit, spawn, start_heartbeat, test_providers


@functools.cache
def worker_app() -> Celery:
    """The worker's Celery app, built on first use (``app`` below), not at import: importing
    this module loads no config and opens no connection."""
    broker_wakeup.install()
    ctx = get_context()
    app = ctx.celery
    # Celery keeps the app's result backend per thread, and the gevent pool's threads are
    # greenlets: every task built a fresh DisabledBackend when its trace read `task.backend`
    # (3.7% of a worker's samples under a sequential load, py-spy). There is no result backend
    # (results live in the job record), so one shared instance serves every task.
    for task in app.tasks.values():
        if task.name.startswith("gateway."):
            task.backend = app.backend
    every = ctx.settings.worker.reaper_interval_s
    options = {"queue": CONTROL_QUEUE, "expires": every * 2}
    health_every = ctx.settings.health.interval_s
    app.conf.beat_schedule = {
        "sweep-leases": {"task": TASK_SWEEP_LEASES, "schedule": every, "options": options},
        "sweep-pending": {"task": TASK_SWEEP_PENDING, "schedule": every, "options": options},
        "sweep-due": {
            "task": TASK_SWEEP_DUE,
            "schedule": DUE_SWEEP_INTERVAL_S,
            "options": {"queue": CONTROL_QUEUE, "expires": 2.0},
        },
        "health-check": {
            "task": TASK_HEALTH_CHECK,
            "schedule": health_every,
            "options": {"queue": CONTROL_QUEUE, "expires": health_every},
        },
    }
    return app


def __getattr__(name: str) -> Any:
    """``workers.celery_worker.app`` (what ``celery -A workers.celery_worker`` looks up), built
    when first asked for (PEP 562)."""
    if name in ("app", "celery"):
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_heartbeat_stop = None
_duties: FleetDuties | None = None


@signals.worker_ready.connect
def _on_ready(**_: Any) -> None:
    global _heartbeat_stop, _duties
    ctx = get_context()
    _heartbeat_stop = start_heartbeat(ctx)
    ctx.watch()
    _duties = FleetDuties(ctx).start()
    test_providers(ctx)  # logs each provider's reachability from this process


@signals.worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    STOPPING.set()
    ctx = get_context()
    # First, before anything that touches Redis (which may be gone and block): the deadline.
    schedule_forced_exit(ctx, ctx.settings.worker.shutdown_grace_s)
    if _heartbeat_stop is not None:
        _heartbeat_stop.set()
    if _duties is not None:
        spawn(_duties.stop, "duties-stop")  # releases duty leases over Redis: not in the handler

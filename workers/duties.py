"""The fleet's periodic duties, run inside every worker process: no singleton
(docs/architecture.md "Processes").

The due-retry mover, the lease reaper, the pending redelivery and the
provider health checks run in the worker processes themselves, coordinated through Redis. Each
duty has a fenced lease (``shared.state.duty_lease``); the worker process holding it runs the duty
every interval, a keeper renews every held lease each ``RENEW_S`` (also while a sweep runs),
and the others try to take it each ``RENEW_S``. A holder that dies stops renewing: another
worker holds the duty at most ``LEASE_S + RENEW_S`` later. A stopping worker releases its
leases at once. Every sweep claims each job with a Lua script, so a lease changing hands
mid-sweep republishes nothing twice.

Intervals are read from the live settings at each run, so a config change applies at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.celery_app import DUE_SWEEP_INTERVAL_S
from shared.config.settings import Settings
from shared.state.duty_lease import DutyLease
from workers.batches import BATCH_STEP_INTERVAL_S, step_batches
from workers.context import WorkerContext
from workers.fair_release import sweep_fair
from workers.health_checks import check_all
from workers.lifecycle import spawn, worker_name
from workers.reaper import Held, sweep_due, sweep_leases, sweep_pending
from workers.slimming import SLIM_INTERVAL_S, slim_jobs
from workers.webhooks import WEBHOOK_INTERVAL_S, deliver_webhooks

log = logging.getLogger(__name__)

LEASE_S = 3.0  # a dead holder's duty is taken over within LEASE_S + RENEW_S
RENEW_S = 1.0  # holders renew, others try to take a free lease, this often
FAIR_SWEEP_INTERVAL_S = 1.0


def _health(ctx: WorkerContext, held: Held) -> object:
    s = ctx.settings
    return check_all(dict(s.providers), ctx.stores.health, s.health.timeout_s, s.health.interval_s)


@dataclass(frozen=True)
class Duty:
    name: str
    interval: Callable[[Settings], float]
    run: Callable[[WorkerContext, Held], object]


DUTIES: tuple[Duty, ...] = (
    Duty("sweep_due", lambda s: DUE_SWEEP_INTERVAL_S, sweep_due),
    Duty("sweep_leases", lambda s: s.worker.reaper_interval_s, sweep_leases),
    Duty("sweep_pending", lambda s: s.worker.reaper_interval_s, sweep_pending),
    Duty("health_check", lambda s: s.health.interval_s, _health),
    Duty("sweep_fair", lambda s: FAIR_SWEEP_INTERVAL_S, sweep_fair),
    Duty("batches", lambda s: BATCH_STEP_INTERVAL_S, step_batches),
    Duty("webhooks", lambda s: WEBHOOK_INTERVAL_S, deliver_webhooks),
    Duty("slim_jobs", lambda s: SLIM_INTERVAL_S, slim_jobs),
)
BY_NAME = {d.name: d for d in DUTIES}


class FleetDuties:
    """This process's share of the fleet's duties (start once per worker process)."""

    def __init__(self, ctx: WorkerContext, duties: tuple[Duty, ...] = DUTIES) -> None:
        self.ctx = ctx
        self.duties = duties
        me = worker_name()
        self.leases = {d.name: DutyLease(ctx.redis, ctx.keys, d.name, LEASE_S, me) for d in duties}
        self._stop = threading.Event()
        self._failing: set[str] = set()  # duties whose last attempt hit an error (logged once)

    def start(self) -> FleetDuties:
        for duty in self.duties:
            spawn(lambda d=duty: self._loop(d), f"duty-{duty.name}")  # type: ignore[misc]
        spawn(self._keep, "duty-keeper")
        return self

    def stop(self) -> None:
        """Stop running duties and release the leases held, so another worker takes over now."""
        self._stop.set()
        for lease in self.leases.values():
            try:
                lease.release()
            except Exception:  # Redis gone: the lease expires on its own
                log.debug("could not release a duty lease", exc_info=True)

    def held(self) -> list[str]:
        return sorted(name for name, lease in self.leases.items() if lease.held)

    def _loop(self, duty: Duty) -> None:
        lease = self.leases[duty.name]
        next_run = 0.0
        while not self._stop.is_set():
            try:
                if not lease.held and lease.acquire():
                    log.info("duty taken", extra={"duty": duty.name, "fence": lease.fence})
                if lease.held and time.monotonic() >= next_run:
                    duty.run(self.ctx, lambda: lease.held and not self._stop.is_set())
                    next_run = time.monotonic() + duty.interval(self.ctx.settings)
                self._recovered(duty.name)
            except Exception:
                self._failed(duty.name)
            wait = max(0.0, next_run - time.monotonic()) if lease.held else RENEW_S
            self._stop.wait(min(wait, RENEW_S))

    def _keep(self) -> None:
        while not self._stop.wait(RENEW_S):
            for name, lease in self.leases.items():
                if not lease.fence:
                    continue
                try:
                    if not lease.renew():
                        log.warning("duty lease lost", extra={"duty": name})
                except Exception:
                    self._failed(name)

    def _failed(self, name: str) -> None:
        if name not in self._failing:
            self._failing.add(name)
            log.warning("duty failed; retrying", extra={"duty": name}, exc_info=True)

    def _recovered(self, name: str) -> None:
        if name in self._failing:
            self._failing.discard(name)
            log.info("duty running again", extra={"duty": name})


def run_once(ctx: WorkerContext, name: str) -> object:
    """Run one duty now unless a worker holds it (an optional ``llm-gateway beat`` triggers
    the duties this way: it adds nothing the workers do not do already)."""
    duty = BY_NAME[name]
    lease = DutyLease(ctx.redis, ctx.keys, name, LEASE_S)
    if not lease.acquire():
        return None
    try:
        return duty.run(ctx, lambda: lease.held)
    finally:
        lease.release()

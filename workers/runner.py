"""Runs one job: take the lease, call the model's deployments in order, write the outcome
under the lease.

Delivery is at-least-once; the lease (``shared/lua/begin.lua``) makes sure one worker runs a
job at a time and the compare-and-set in ``finish.lua`` makes the result exactly-once.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from shared import metrics
from shared.errors import (
    GatewayError,
    GatewayTimeout,
    NoHealthyProvider,
    ProviderFailed,
    stored_error,
)
from shared.jobs import EXPIRED, FAILED, SUCCEEDED, Begin, Job
from shared.logs import request_id_var
from workers.classify import classify, client_error
from workers.context import WorkerContext
from workers.lease import ACTIVE, LeaseKeeper
from workers.providers.base import ProviderCallError

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: str
    fields: dict[str, Any] = field(default_factory=dict)


def _failed(err: GatewayError, status: str = FAILED) -> Outcome:
    return Outcome(status, {"error": stored_error(err)})


def _expired() -> Outcome:
    return _failed(
        GatewayTimeout(
            "the job's deadline passed before a provider answered", code="deadline_exceeded"
        ),
        EXPIRED,
    )


class LeaseLost(Exception):
    """Another worker owns the job now; this one must write nothing more."""


class JobRunner:
    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def run(self, job_id: str) -> None:
        s = self.ctx.settings
        token = secrets.token_hex(16)
        begun = self.store.begin(job_id, token, s.worker.lease_s, s.queue.max_deliveries)
        if begun.outcome in (Begin.MISSING, Begin.TERMINAL, Begin.LEASED):
            log.info("job skipped", extra={"job_id": job_id, "reason": begun.outcome.value})
            return
        keeper = LeaseKeeper(self.store, job_id, token, s.worker.lease_s).start()
        ACTIVE.add(job_id, token)
        try:
            job = self.store.get(job_id)
            if job is None:
                return
            request_id_var.set(job.request_id)
            if begun.outcome is Begin.EXHAUSTED:
                outcome = _failed(
                    GatewayError(
                        f"the job was delivered {begun.deliveries} times without finishing "
                        f"(queue.max_deliveries is {s.queue.max_deliveries})",
                        code="max_deliveries_exceeded",
                    )
                )
            elif time.time() >= job.deadline_at:
                outcome = _expired()
            else:
                outcome = self._execute(job, token, keeper)
            written = self.store.finish(job_id, token, outcome.status, outcome.fields)
            if written == 1:
                metrics.JOBS_FINISHED.labels(outcome.status).inc()
            log.log(
                logging.DEBUG if outcome.status == SUCCEEDED else logging.INFO,
                "job finished",
                extra={"job_id": job_id, "status": outcome.status, "written": written},
            )
        except LeaseLost:
            log.warning("lease lost; result discarded", extra={"job_id": job_id})
        finally:
            keeper.stop()
            ACTIVE.remove(job_id)

    def _execute(self, job: Job, token: str, keeper: LeaseKeeper) -> Outcome:
        s = self.ctx.settings
        deployments = s.models.get(job.model, ())
        if not deployments:
            return _failed(NoHealthyProvider(f"no deployment serves model {job.model!r}"))
        attempts: list[dict[str, Any]] = list(job.attempts or [])
        last_error: GatewayError | None = None
        for dep in deployments:
            if len(attempts) >= s.retry.max_total_attempts:
                break
            remaining = job.deadline_at - time.time()
            if remaining <= 0:
                return _expired()
            adapter = self.ctx.adapters.get(dep.provider)
            provider = s.providers.get(dep.provider)
            if adapter is None or provider is None:
                continue
            timeout = min(provider.timeout_s, remaining)
            started = time.time()
            try:
                result = adapter.complete(job.request, dep.model, timeout)
            except ProviderCallError as err:
                cls = classify(err)
                attempts.append(self._attempt(dep.provider, dep.model, started, err, cls.name))
                self._record(job.id, token, keeper, {"attempts": attempts})
                metrics.PROVIDER_CALLS.labels(dep.provider, cls.name).inc()
                log.info(
                    "provider call failed",
                    extra={
                        "job_id": job.id,
                        "provider": dep.provider,
                        "class": cls.name,
                        "status": err.status,
                        "code": err.code,
                    },
                )
                last_error = client_error(err, cls, dep.provider)
                if not cls.fallback:
                    return _failed(last_error)
                if time.time() >= job.deadline_at:
                    return _expired()
                continue
            duration = time.time() - started
            metrics.PROVIDER_CALLS.labels(dep.provider, "success").inc()
            metrics.PROVIDER_LATENCY.labels(dep.provider).observe(duration)
            attempts.append(self._attempt(dep.provider, dep.model, started, None, None))
            return Outcome(
                SUCCEEDED, {"result": result, "provider": dep.provider, "attempts": attempts}
            )
        return _failed(last_error or ProviderFailed("every deployment failed"))

    def _record(self, job_id: str, token: str, keeper: LeaseKeeper, fields: dict[str, Any]) -> None:
        if keeper.lost.is_set() or not self.store.update(job_id, token, fields):
            raise LeaseLost(job_id)

    @staticmethod
    def _attempt(
        provider: str, model: str, started: float, err: ProviderCallError | None, cls: str | None
    ) -> dict[str, Any]:
        outcome = "success" if err is None else ("timeout" if err.kind == "timeout" else "error")
        return {
            "provider": provider,
            "model": model,
            "started_at": started,
            "duration_ms": round((time.time() - started) * 1000, 1),
            "outcome": outcome,
            "error": None
            if err is None
            else {
                "class": cls,
                "status": err.status,
                "code": err.code,
                "message": err.message[:500],
            },
        }

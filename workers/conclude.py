"""How a delivery's outcome is written: parked in the due-time set for its retry, or finished
(``finish.lua``, under the lease) with what rides in the same pipeline (the breaker's success,
the cache entry, the charge), then the metrics, the stream's end and the tokens/min
correction. Every write waits out a Redis outage (``redis_wait``): an answer in hand is
never dropped."""

from __future__ import annotations

import logging
import time

from shared import metrics
from shared.state.job_record import SUCCEEDED, Job
from shared.state.jobs import Step
from shared.state.ratelimit import KeyLimits
from workers.context import WorkerContext
from workers.outcome import Outcome
from workers.redis_wait import until_redis_answers
from workers.stream_writer import StreamRelay

log = logging.getLogger(__name__)


def _count_calls(ctx: WorkerContext, outcome: Outcome, started: float) -> None:
    """This delivery's provider calls, into the fleet's per-minute statistics."""
    mine = [
        a
        for a in outcome.fields.get("attempts") or ()
        if float(a.get("started_at") or 0) >= started
    ]
    if not mine:
        return
    try:
        ctx.stores.provider_stats.record(mine)
    except Exception:  # statistics never fail a job
        log.debug("could not count provider calls", exc_info=True)


def conclude(
    ctx: WorkerContext,
    job: Job,
    token: str,
    outcome: Outcome,
    relay: StreamRelay | None,
    started: float,
) -> None:
    """Write how this delivery ended (parked for a retry, or finished with its bookkeeping),
    then count its provider calls (``started``: when its attempts began)."""
    try:
        _write_outcome(ctx, job, token, outcome, relay)
    finally:  # after the answer is written: a waiting client does not wait for this
        _count_calls(ctx, outcome, started)


def _write_outcome(
    ctx: WorkerContext, job: Job, token: str, outcome: Outcome, relay: StreamRelay | None
) -> None:
    if outcome.park_until is not None:
        due = outcome.park_until
        parked = until_redis_answers(
            "parking the job",
            job.id,
            lambda: ctx.stores.jobs.defer(job.id, token, due, outcome.status, outcome.fields),
        )
        log.info(
            "job parked",
            extra={
                "job_id": job.id,
                "status": outcome.status,
                "due_in_s": round(outcome.park_until - time.time(), 2),
                "written": parked,
            },
        )
        return
    written = until_redis_answers(
        "recording the outcome", job.id, lambda: _finish(ctx, job, token, outcome)
    )
    if written == 1 and relay is not None and relay.emitted:
        if outcome.status == SUCCEEDED:
            relay.finish()
        else:
            relay.fail(outcome.fields.get("error"))
    if written == 1:
        metrics.JOBS_FINISHED.labels(outcome.status).inc()
        metrics.JOB_DURATION.labels(job.priority, outcome.status).observe(
            time.time() - job.created_at
        )
        if outcome.remember:
            metrics.CACHE_STORES.inc()
        _count_tokens(job, outcome)
        _correct_tokens(ctx, job, outcome)
    log.log(
        logging.DEBUG if outcome.status == SUCCEEDED else logging.INFO,
        "job finished",
        extra={"job_id": job.id, "status": outcome.status, "written": written},
    )


def _count_tokens(job: Job, outcome: Outcome) -> None:
    provider = outcome.fields.get("provider")
    usage = (outcome.fields.get("result") or {}).get("usage") or {}
    if outcome.status != SUCCEEDED or not provider or outcome.fields.get("cache"):
        return
    door = job.door or "unknown"  # a record written before doors were recorded
    for kind in ("prompt", "completion"):
        n = usage.get(f"{kind}_tokens")
        if isinstance(n, int) and n > 0:
            metrics.TOKENS.labels(provider, job.model, job.owner, kind, door).inc(n)


def _correct_tokens(ctx: WorkerContext, job: Job, outcome: Outcome) -> None:
    """Charge the key's tokens/min with the real usage instead of the admission estimate."""
    tpm = KeyLimits.for_key(ctx.settings, job.owner).tpm
    if not tpm:
        return
    usage = (outcome.fields.get("result") or {}).get("usage") or {}
    provider_called = outcome.status == SUCCEEDED and not outcome.fields.get("cache")
    actual = int(usage.get("total_tokens") or 0) if provider_called else 0
    try:
        ctx.stores.limiter.adjust_tokens(job.owner, tpm, actual - job.tokens_estimate)
    except Exception:  # accounting must never fail a finished job
        log.warning("could not correct the tokens/min bucket", exc_info=True)


def _finish(ctx: WorkerContext, job: Job, token: str, outcome: Outcome) -> int:
    """Write the outcome; a success's bookkeeping rides in the same pipeline."""
    steps: list[Step] = []
    if outcome.breaker_success is not None:
        name, probe = outcome.breaker_success
        steps.append(lambda p: ctx.stores.breakers.record(name, True, probe, pipe=p))
    if outcome.remember:
        result, provider = outcome.fields["result"], outcome.fields.get("provider")
        steps.append(
            lambda p: ctx.stores.cache.put(job.owner, job.request, result, provider, pipe=p)
        )
    charge = outcome.charge
    if charge is not None:  # counted whatever the finish finds (cancelled, lease lost)
        # The job's total as its notice tells a waiting sync request: what earlier
        # deliveries were charged by this delivery's begin, and this one's. The record's
        # cost is charge.lua's alone (the finish does not write it: JobStore._finish_call),
        # so a lapsed delivery's late charge stays counted there.
        outcome.fields["cost_micro"] = job.cost_micro + (charge.micro or 0)
        if charge.micro is None or job.cost_unknown:
            outcome.fields["cost_unknown"] = True
        key = ctx.settings.key(job.owner)
        period = key.budget.period if key is not None and key.budget else None
        steps.append(
            lambda p: ctx.stores.spend.charge(job.id, token, job.owner, charge, period, pipe=p)
        )
    written, done = ctx.stores.jobs.finish_with(
        job.id, token, outcome.status, outcome.fields, steps
    )
    if charge is not None and charge.micro:
        metrics.COST.labels(job.owner, charge.provider, charge.model).inc(charge.micro / 1e6)
    # A breaker step redone directly settled itself (it returned the state, a str).
    if outcome.breaker_success is not None and not isinstance(done[0], str):
        ctx.stores.breakers.settle(outcome.breaker_success[0], done[0])
    return written

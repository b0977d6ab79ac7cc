"""Runs one delivery of a job: take the lease, route, call, then finish or park.

Delivery is at-least-once; the lease (``shared/lua/begin.lua``) makes sure one worker runs a
job at a time and the compare-and-set in ``finish.lua`` makes the result exactly-once.

A delivery walks the model's deployments in order (a preferred provider first), skipping
those that cannot honour the request (``shared.wire.capabilities``: no call, nothing counted
against the provider; when none can, the job fails with a 400 naming the field), that are
unhealthy, whose circuit breaker refuses the call, or that the job is done with. A retryable
error parks the job in the due-time set (``defer.lua``) for its backoff, so no worker slot
waits it out; a later delivery calls the same deployment again. When every
deployment failed, the fallbacks in ``fallbacks.order`` follow: the last good answer (stale),
then the degraded answer.

A job of a kind this worker version cannot run (``workers.kinds``: a newer API made it during a
rolling upgrade) is never run as another kind: it is put back, parked for ``PUT_BACK_S`` as a
retry is (the lease and the delivery given back), and the due sweep republishes it for any
worker. An exhausted or expired one still ends here, as any job would.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from celery.exceptions import Reject

from shared import metrics
from shared.celery_app import enqueue
from shared.config.settings import Deployment
from shared.errors import (
    GatewayError,
    InvalidRequest,
    ProviderFailed,
)
from shared.logs import request_id_var
from shared.routing import order_deployments
from shared.spend.cost import Usage, cost_micro
from shared.spend.usage import Charge
from shared.state import fleet_stats
from shared.state.breaker import Admission, breaker_name
from shared.state.cache import policy
from shared.state.job_record import QUEUED, RETRYING, SUCCEEDED, Job
from shared.state.jobs import Begin, GroupTake
from shared.wire import capabilities
from workers import fair_release, kinds
from workers.backoff import decide
from workers.classify import CONTEXT, ErrorClass, classify, client_error
from workers.conclude import conclude
from workers.context import WorkerContext
from workers.fallback import after_all_failed
from workers.inflight import IN_FLIGHT
from workers.lease import ACTIVE, STOPPING, LeaseKeeper
from workers.outcome import Outcome, expired, failed, with_attempts
from workers.providers.base import Adapter, ProviderCallError
from workers.redis_wait import until_redis_answers
from workers.stream_writer import StreamRelay

log = logging.getLogger(__name__)
# A job whose cache lookup is the worker's to make (options): a batch line.
WORKER_LOOKUP = "worker_lookup"
# A job this worker cannot run waits this long before it is offered to the fleet again: long
# enough that an older worker alone in the fleet does not spin on it, short enough that a newer
# one starting meanwhile takes it soon.
PUT_BACK_S = 2.0


class LeaseLost(Exception):
    """Another worker owns the job now; this one must write nothing more."""


class JobRunner:
    def __init__(
        self,
        ctx: WorkerContext,
        calling: threading.Event | None = None,
        group: GroupTake | None = None,
    ) -> None:
        self.ctx = ctx
        self.calling = calling  # set as the provider call starts (workers/group.py)
        # The first job of a group message takes its group with its lease (workers/group.py):
        # the ids are in ``taken`` once ``began`` is set.
        self.group = group
        self.taken: list[str] | None = None
        self.began = threading.Event()
        # The hinted breaker's state as begin.lua read it with the lease (one use).
        self.peek: tuple[str, str] | None = None
        self.store = ctx.stores.jobs
        self.relay: StreamRelay | None = None  # set for a `stream: true` job
        self.started = time.time()  # this delivery's attempts began after this

    def run(self, job_id: str) -> None:
        if STOPPING.is_set():  # back to the queue for another worker
            try:  # handed back, as a republish is: not taken for lost meanwhile
                self.store.requeued(job_id)
            except Exception:  # Redis gone: the sweep may republish it once more, harmlessly
                log.debug("could not re-score a job handed back", exc_info=True)
            raise Reject("this worker is stopping", requeue=True)
        s = self.ctx.settings
        token = secrets.token_hex(16)
        begun = until_redis_answers(
            "taking the job",
            job_id,
            lambda: self.store.begin(
                job_id, token, s.worker.lease_s, s.queue.max_deliveries, self.group
            ),
        )
        self.taken = begun.taken
        self.began.set()
        if begun.backlog and begun.job is not None:  # the key's window freed: its next goes
            self._release_next(begun.job)
        if begun.outcome in (Begin.MISSING, Begin.TERMINAL, Begin.LEASED):
            log.info("job skipped", extra={"job_id": job_id, "reason": begun.outcome.value})
            return
        keeper = LeaseKeeper(self.store, job_id, token, s.worker.lease_s).start()
        ACTIVE.add(job_id, token)
        try:
            job = begun.job
            if job is None:
                return
            if STOPPING.is_set():  # began as the stop did: give it back now (as release_all)
                if self.store.release(job_id, token):
                    enqueue(self.ctx.celery, job_id, job.priority)
                return
            request_id_var.set(job.request_id)
            if self._streamed(job):
                self.relay = StreamRelay(
                    self.ctx.redis,
                    self.ctx.keys,
                    job.id,
                    job.request,
                    s.streaming.ttl_s,
                )
            known = kinds.knows(job.kind)
            if begun.deliveries == 1 and known:  # a job put back has not started
                metrics.QUEUE_WAIT.labels(job.priority).observe(time.time() - job.created_at)
            if begun.outcome is Begin.EXHAUSTED:
                outcome = failed(
                    GatewayError(
                        f"the job was delivered {begun.deliveries} times without finishing "
                        f"(queue.max_deliveries is {s.queue.max_deliveries})",
                        code="max_deliveries_exceeded",
                    )
                )
            elif time.time() >= job.deadline_at:
                outcome = expired()
            elif not known:  # never run as another kind: back for a worker that knows it
                self._put_back(job, token)
                return
            elif self.relay is not None and self.relay.count_earlier():
                # A worker died mid-stream: the client holds part of an answer that cannot be
                # taken back, so starting over would garble it. The stream ends with an error.
                outcome = failed(
                    ProviderFailed(
                        "the worker running this stream was lost after chunks were sent",
                        code="stream_interrupted",
                    )
                )
            else:
                self.peek = begun.breaker_peek
                outcome = self._execute(job, token, keeper)
            conclude(self.ctx, job, token, outcome, self.relay, self.started)
        except LeaseLost:
            log.warning("lease lost; result discarded", extra={"job_id": job_id})
        finally:
            keeper.stop()
            ACTIVE.remove(job_id)

    def _put_back(self, job: Job, token: str) -> None:
        """Give back a job of a kind this worker cannot run: parked ``queued`` for
        ``PUT_BACK_S`` (``defer.lua`` frees the lease and takes back the delivery, so put-backs
        never use up ``queue.max_deliveries``); the due sweep republishes it for any worker."""
        # begin.lua stamped started_at as it took the lease: without an attempt, nothing began.
        fields: dict[str, Any] = {} if job.attempts else {"started_at": None}
        due = time.time() + PUT_BACK_S
        status = RETRYING if job.attempts else QUEUED  # as it stood before this delivery
        parked = until_redis_answers(
            "putting the job back",
            job.id,
            lambda: self.store.defer(job.id, token, due, status, fields),
        )
        if parked == 1:
            metrics.JOBS_PUT_BACK.labels("unknown_kind").inc()
        log.warning(
            "job put back: unknown kind",
            extra={"job_id": job.id, "kind": job.kind, "written": parked},
        )

    def _release_next(self, job: Job) -> None:
        try:
            fair_release.release(self.ctx, job.priority, job.owner)
        except Exception:  # the fair sweep releases it within a second
            log.warning("could not release held jobs", exc_info=True)

    @staticmethod
    def _streamed(job: Job) -> bool:
        return bool((job.request or {}).get("stream"))

    def _execute(self, job: Job, token: str, keeper: LeaseKeeper) -> Outcome:
        """Walk the model's deployments in order until one answers or the walk must stop."""
        s = self.ctx.settings
        hit = self._cached(job)
        if hit is not None:
            return hit
        deployments = order_deployments(
            s.models.get(job.model, ()), (job.options or {}).get("preferred_provider")
        )
        walk = _Walk(job, token, keeper, deployments)
        for dep in deployments:
            outcome = self._try(walk, dep)
            if outcome is not None:
                return outcome
            if walk.stop:
                break
        if deployments and len(walk.cannot) == len(deployments):
            # The API refuses such a request before making a job; the config changed since.
            refused = capabilities.refusal(s, job.model, job.request)
            param, message = refused or (walk.cannot[0], f"{walk.cannot[0]}: not supported")
            error = InvalidRequest(message, code="unsupported_parameter", param=param)
            return with_attempts(failed(error), walk.attempts)
        if walk.over_quota:  # delayed, not failed: the job runs when a quota frees, or expires
            due = time.time() + min(walk.over_quota)
            if due >= job.deadline_at:
                return with_attempts(expired(), walk.attempts)
            return Outcome(QUEUED, walk.progress(), park_until=due)
        return after_all_failed(self.ctx, job, walk.attempts, walk.last_error, walk.unavailable)

    def _try(self, walk: _Walk, dep: Deployment) -> Outcome | None:
        """One deployment: skip it (None, maybe ``walk.stop``), or call it and return how the
        delivery ends (an answer, a parked retry, a failure), or None to try the next."""
        s, job = self.ctx.settings, walk.job
        adapter = self.ctx.adapters.get(dep.provider)
        provider = s.providers.get(dep.provider)
        if adapter is None or provider is None:
            return None
        # Before anything is counted: a request this provider cannot honour is not its fault.
        param = capabilities.unhonoured(adapter.capabilities, job.request)
        if param is not None:
            walk.cannot.append(param)
            walk.unavailable.append(f"{_key(dep)}: cannot honour `{param}`")
            return None
        if _key(dep) in walk.exhausted:
            return None
        if len(walk.attempts) >= s.retry.max_total_attempts:
            walk.stop = True
            return None
        grant = self.ctx.stores.quotas.acquire(provider, f"{job.id}:{walk.token}")
        if not grant.allowed:  # routing skips a deployment over its provider's quota
            metrics.QUOTA_DELAYS.labels(dep.provider, grant.limit).inc()
            walk.over_quota.append(grant.retry_after_s)
            walk.unavailable.append(f"{dep.provider}: over its {grant.limit} quota")
            return None
        bname = breaker_name(dep.provider, dep.model, provider.breaker_per_model)
        admission = self._admit(job, bname, dep.provider)
        if not admission.allowed:
            self.ctx.stores.quotas.release(provider, grant, called=False)
            why = "unhealthy" if admission.reason == "unhealthy" else "circuit open"
            walk.unavailable.append(f"{bname}: {why}")
            return None
        time_left = job.deadline_at - time.time()
        if time_left <= 0:
            self.ctx.stores.quotas.release(provider, grant, called=False)
            return with_attempts(expired(), walk.attempts)
        started = time.time()
        if self.calling is not None:
            self.calling.set()
        degraded = ",".join(capabilities.degraded(adapter.capabilities, job.request))
        if self.relay is not None:
            self.relay.degraded_params = degraded
        try:
            result = self._call(job, dep, adapter, min(provider.timeout_s, time_left))
        except ProviderCallError as err:
            cls = classify(err)
            # The attempt ends when the call did, before its quota slot is given back.
            walk.attempts.append(self._attempt(dep, started, err, cls.name))
            self.ctx.stores.quotas.release(provider, grant, called=True)
            self.ctx.stores.breakers.record(bname, not cls.breaker_failure, admission.probe_token)
            self._note_failure(dep, job, err, cls)
            return self._after_failure(walk, dep, err, cls)
        except BaseException:
            self.ctx.stores.quotas.release(provider, grant, called=True)
            raise
        duration = time.time() - started
        usage = Usage.of(result.get("usage") if isinstance(result, dict) else None)
        charge = Charge(dep.provider, dep.model, usage, cost_micro(usage, dep.price))
        attempt = self._attempt(dep, started, None, None)  # before the release
        attempt["cost_usd"] = None if charge.micro is None else charge.micro / 1_000_000
        walk.attempts.append(attempt)
        self.ctx.stores.quotas.release(provider, grant, called=True)
        metrics.PROVIDER_CALLS.labels(dep.provider, "success").inc()
        metrics.PROVIDER_LATENCY.labels(dep.provider).observe(duration)
        fields = {"result": result, "provider": dep.provider, **walk.progress()}
        if degraded:
            fields["degraded_params"] = degraded
        return Outcome(
            SUCCEEDED,
            fields,
            breaker_success=(bname, admission.probe_token),
            # A degraded answer never serves a later request (a provider may honour it all).
            remember=self._cacheable(job) and not degraded,
            charge=charge,
        )

    def _call(self, job: Job, dep: Deployment, adapter: Adapter, timeout: float) -> Any:
        with IN_FLIGHT.call(dep.provider):
            if self.relay is not None:
                return adapter.stream(job.request, dep.model, timeout, self.relay.emit)
            return adapter.complete(job.request, dep.model, timeout)

    def _after_failure(
        self, walk: _Walk, dep: Deployment, err: ProviderCallError, cls: ErrorClass
    ) -> Outcome | None:
        """After a failed call: end the delivery (failed, expired, parked for a retry of the
        same deployment) or return None to go on to the next deployment."""
        s, job = self.ctx.settings, walk.job
        walk.last_error = error = client_error(err, cls, dep.provider)
        if self.relay is not None and self.relay.emitted:
            # Chunks already reached the client: neither a retry nor a fallback can
            # continue that answer. The stream ends with this error.
            return with_attempts(failed(error), walk.attempts)
        if cls is CONTEXT and any(d.larger_context for d in walk.deployments):
            # Only a model marked larger-context can take a prompt this long: every other
            # deployment is done with for this job (kept across parked retries).
            walk.exhaust(*(d for d in walk.deployments if not d.larger_context), dep)
            self._record(walk)
            metrics.FALLBACKS.labels("larger_context").inc()
            self.ctx.stores.stats.add(fleet_stats.fallback("larger_context"))
            return None
        if not cls.retry_same and not cls.fallback:
            return with_attempts(failed(error), walk.attempts)
        here = sum(
            1 for a in walk.attempts if a["provider"] == dep.provider and a["model"] == dep.model
        )
        retry = decide(
            retry_same=cls.retry_same,
            attempts_here=here,
            max_attempts=s.retry.max_attempts,
            retry_after_s=err.retry_after,
            base_s=s.retry.base_delay_s,
            cap_s=s.retry.max_delay_s,
            time_left_s=job.deadline_at - time.time(),
        )
        if retry.retry and len(walk.attempts) < s.retry.max_total_attempts:
            metrics.RETRIES.labels(dep.provider, cls.name).inc()
            self.ctx.stores.stats.add(fleet_stats.RETRIES)
            return Outcome(RETRYING, walk.progress(), park_until=time.time() + retry.delay_s)
        walk.exhaust(dep)
        self._record(walk)
        if not cls.fallback:
            return with_attempts(failed(error), walk.attempts)
        if time.time() >= job.deadline_at:
            return with_attempts(expired(), walk.attempts)
        if "alternative_provider" not in s.fallbacks.order_for(job.model):
            walk.stop = True
            return None
        metrics.FALLBACKS.labels("alternative_provider").inc()
        self.ctx.stores.stats.add(fleet_stats.fallback("alternative_provider"))
        return None

    def _admit(self, job: Job, bname: str, provider: str) -> Admission:
        """The breaker's verdict. A closed breaker and a healthy provider, read by begin.lua
        with the lease, is the verdict the check would give (its closed case only reads those
        two), so the first call of a delivery skips that round trip; anything else asks."""
        peek, self.peek = self.peek, None
        keys = self.ctx.keys
        if (
            peek is not None
            and peek[0] == "closed"
            and peek[1] != "0"
            and job.breaker_hint == f"{keys.breaker(bname)}\n{keys.health(provider)}"
        ):
            return Admission(True)
        return self.ctx.stores.breakers.allow(bname, provider)

    def _cached(self, job: Job) -> Outcome | None:
        """A batch line's response-cache lookup, made here (the API makes every other job's
        before the job exists): a fresh answer ends the line without a provider call."""
        options = job.options or {}
        if not options.get(WORKER_LOOKUP):
            return None
        pol = policy(self.ctx.settings.cache, job.request, options.get("cache"))
        if not pol.lookup:
            return None
        try:
            entry = self.ctx.stores.cache.fresh(job.owner, job.request, pol.max_age_s)
        except Exception:  # a lookup that fails costs a provider call, not the line
            log.warning("cache lookup failed", extra={"job_id": job.id})
            return None
        if entry is None:
            return None
        self.ctx.stores.stats.add(fleet_stats.CACHE_HITS)
        fields = {"result": entry.result, "provider": entry.provider, "cache": "hit"}
        return Outcome(SUCCEEDED, fields)

    def _cacheable(self, job: Job) -> bool:
        """Store the answer for fresh hits (if the request is cacheable) or for the
        cached-response fallback, unless the request said ``no-store``."""
        s = self.ctx.settings
        if (job.options or {}).get("cache") == "no-store":
            return False
        # no-cache only skipped this request's lookup: its answer may serve the next one.
        return policy(s.cache, job.request).lookup or "cached_response" in s.fallbacks.order_for(
            job.model
        )

    def _note_failure(
        self, dep: Deployment, job: Job, err: ProviderCallError, cls: ErrorClass
    ) -> None:
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
        try:
            if cls.mark_unhealthy:
                self.ctx.stores.health.mark(dep.provider, False, str(err))
            else:
                self.ctx.stores.health.note_error(dep.provider, str(err))
        except Exception:  # status bookkeeping must never fail a job
            log.warning("could not record the provider error", exc_info=True)

    def _record(self, walk: _Walk) -> None:
        """Keep the walk's attempts and exhausted deployments in the record (under the lease)."""
        if walk.keeper.lost.is_set() or not self.store.update(
            walk.job.id, walk.token, walk.progress()
        ):
            raise LeaseLost(walk.job.id)

    @staticmethod
    def _attempt(
        dep: Deployment, started: float, err: ProviderCallError | None, cls: str | None
    ) -> dict[str, Any]:
        outcome = "success" if err is None else ("timeout" if err.kind == "timeout" else "error")
        error = None
        if err is not None:
            error = {
                "class": cls,
                "status": err.status,
                "code": err.code,
                "message": err.message[:500],
            }
        return {
            "provider": dep.provider,
            "model": dep.model,
            "started_at": started,
            "duration_ms": round((time.time() - started) * 1000, 1),
            "outcome": outcome,
            "error": error,
            "cost_usd": 0.0,  # no answer, nothing billed; a success's is set by its caller
        }


def _key(dep: Deployment) -> str:
    return f"{dep.provider}/{dep.model}"


class _Walk:
    """What one delivery carries from deployment to deployment: the attempts so far (this
    delivery's and earlier ones'), the deployments done with, and why others were skipped."""

    def __init__(
        self, job: Job, token: str, keeper: LeaseKeeper, deployments: list[Deployment]
    ) -> None:
        self.job, self.token, self.keeper, self.deployments = job, token, keeper, deployments
        self.attempts: list[dict[str, Any]] = list(job.attempts or [])
        self.exhausted: list[str] = list(job.exhausted or [])
        self.last_error: GatewayError | None = None
        self.unavailable: list[str] = []
        self.cannot: list[str] = []  # per deployment that cannot honour the request: the field
        self.over_quota: list[float] = []  # waits until a skipped deployment's quota frees
        self.stop = False  # no later deployment is to be tried

    def exhaust(self, *deps: Deployment) -> None:
        for dep in deps:
            if _key(dep) not in self.exhausted:
                self.exhausted.append(_key(dep))

    def progress(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "exhausted": self.exhausted}

"""Every Redis key and channel the gateway uses, built here and nowhere else.

Scheme: ``{prefix}:{kind}:{id}`` (the prefix comes from ``redis.prefix`` in config, so
several gateways can share one Redis). Celery's own queue keys are named by the queues in
``shared.celery_app`` and are not prefixed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "gw"

    def job(self, job_id: str) -> str:
        """Hash: the job record (status, request, result, attempts...)."""
        return f"{self.prefix}:job:{job_id}"

    def lease(self, job_id: str) -> str:
        """String: the token of the worker that runs the job (SET NX PX)."""
        return f"{self.prefix}:lease:{job_id}"

    def owner_jobs(self, owner: str) -> str:
        """Sorted set: an API key's job ids scored by creation time (GET /v1/jobs)."""
        return f"{self.prefix}:owner:{owner}:jobs"

    @property
    def inflight(self) -> str:
        """Sorted set: ids of jobs a worker has begun, scored by start time (lease reaper)."""
        return f"{self.prefix}:inflight"

    @property
    def pending(self) -> str:
        """Sorted set: ids of queued jobs scored by when they were (re)published; the pending
        sweep republishes one still queued long after, in case the broker lost its message."""
        return f"{self.prefix}:pending"

    @property
    def done_channel(self) -> str:
        """Pub/sub channel: a job id is published when the job becomes terminal."""
        return f"{self.prefix}:done"

    @property
    def due(self) -> str:
        """Sorted set: parked jobs (retry backoff, waiting for recovery) scored by due time."""
        return f"{self.prefix}:due"

    def breaker(self, name: str) -> str:
        """Hash: a circuit breaker's state, open_until, consecutive failures, opens."""
        return f"{self.prefix}:breaker:{name}"

    def breaker_probe(self, name: str) -> str:
        """String with TTL: the token of the one half-open probe in flight."""
        return f"{self.prefix}:breaker:{name}:probe"

    def breaker_window(self, name: str) -> str:
        """Hash: per-second ok/fail counts of the breaker's sliding window."""
        return f"{self.prefix}:breaker:{name}:window"

    def health(self, provider: str) -> str:
        """Hash: a provider's last health check and last error."""
        return f"{self.prefix}:health:{provider}"

    def lastgood(self, owner: str, digest: str) -> str:
        """String with TTL: the last good answer to a request (cached-response fallback)."""
        return f"{self.prefix}:lastgood:{owner}:{digest}"

    @property
    def lastgood_index(self) -> str:
        """Sorted set: last-good entries by time stored, to bound their number."""
        return f"{self.prefix}:lastgood-index"

    def idempotency(self, owner: str, key_sha256: str) -> str:
        """String with TTL: the job an API key's Idempotency-Key stands for, and its body hash."""
        return f"{self.prefix}:idem:{owner}:{key_sha256}"

    def lock(self, name: str) -> str:
        """String: a sweep's mutual-exclusion lock (SET NX PX)."""
        return f"{self.prefix}:lock:{name}"

    def worker_heartbeat(self, worker: str) -> str:
        """String with TTL: a live worker process."""
        return f"{self.prefix}:worker:{worker}"

    @property
    def worker_heartbeat_pattern(self) -> str:
        return f"{self.prefix}:worker:*"

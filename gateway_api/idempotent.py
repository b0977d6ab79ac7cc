"""``Idempotency-Key`` at admission: the key is claimed for the new job before it is created,
a repeat gets the job the key already stands for, and a creation that fails gives the key back
unless the job may exist after all (``shared/state/idempotency.py`` holds the claims)."""

from __future__ import annotations

import time

from gateway_api import repair
from gateway_api.services import Services
from shared.errors import BACKEND_DOWN, Conflict, Unprocessable
from shared.state.job_record import Job

# The claiming request writes the record right after its claim: a repeat waits this long for it.
RECORD_WAIT_S = 2.0


def claim(
    services: Services, owner: str, key: str, digest: str, job_id: str, ttl_s: int | None = None
) -> Job | None:
    """Claim ``key`` for ``job_id``: None when this request goes on to create it, else the job
    the key already stands for. ``ttl_s``: how long the key stands for the job, when shorter
    than its record. 422 for the key with another body, 409 while its first request is still
    being accepted or once its answer is no longer kept."""
    idem = services.stores.idempotency
    held = idem.claim(owner, key, digest, job_id, ttl_s)
    if held.first:
        return None
    if not held.same_body:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    existing = _await_record(services, held.job_id)
    if existing is not None and existing.slimmed:
        raise Conflict(
            "The answer of the request this Idempotency-Key stands for is no longer kept "
            "(queue.sync_result_ttl_s); send it again with a new key.",
            code="idempotency_key_expired",
            param="Idempotency-Key",
        )
    if existing is not None:
        return existing
    if held.stale:
        # Claimed long ago by a request that never created its job (its API process died, or
        # Redis went away between the two): this request takes the key over.
        held = idem.take_over(owner, key, held, job_id, ttl_s)
    if held.first:
        return None
    err = Conflict(
        "A request with this Idempotency-Key is still being accepted; retry shortly.",
        code="idempotency_key_in_use",
    )
    err.should_retry = None
    raise err


def release(services: Services, owner: str, key: str, job_id: str, failure: Exception) -> None:
    """Nothing was accepted (``failure`` ended the creation): the key must not stand for a job
    that is not. But with Redis unreachable mid-step, create.lua may have run and only its
    reply was lost: that job runs. The key is then kept while the job exists (checked in the
    release's own step), so the client's retry is answered with it instead of running again."""
    unless_created = isinstance(failure, BACKEND_DOWN)
    repair.soon(
        lambda: services.stores.idempotency.release(owner, key, job_id, unless_created),
        "releasing an Idempotency-Key",
        job_id,
    )


def _await_record(services: Services, job_id: str) -> Job | None:
    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        job = services.stores.jobs.get(job_id)
        if job is not None or time.monotonic() >= deadline:
            return job
        time.sleep(0.02)

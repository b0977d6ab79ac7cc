"""Admission: a new job behind the key's limits, or, for a repeated Idempotency-Key, the job
that key already stands for."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request

from gateway_api import repair
from gateway_api.auth import Principal
from gateway_api.key_limits import take
from gateway_api.parsing import Intake
from gateway_api.services import Services
from shared.errors import BACKEND_DOWN, Conflict, InvalidRequest, Unprocessable
from shared.state.idempotency import MAX_KEY_LENGTH, body_digest
from shared.state.job_record import Job


@dataclass(frozen=True)
class Admitted:
    job: Job
    replayed: bool  # an earlier request with the same Idempotency-Key created this job


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", param="Idempotency-Key"
        )
    return key


def admit(
    services: Services,
    principal: Principal,
    route: str,
    raw_body: Any,
    job_id: str,
    create: Callable[[str], Job],
    claim_ttl_s: int | None = None,
) -> Admitted:
    """Create the job, or, for a repeated Idempotency-Key, find the job it already stands for.
    ``claim_ttl_s``: how long the key stands for the job, when shorter than its record."""
    key = idempotency_key()
    if key is None:
        return Admitted(create(job_id), False)
    idem = services.stores.idempotency
    claim = idem.claim(principal.key_id, key, body_digest(route, raw_body), job_id, claim_ttl_s)
    if not claim.first:
        if not claim.same_body:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        existing = _await_record(services, claim.job_id)
        if existing is not None and existing.slimmed:
            raise Conflict(
                "The answer of the request this Idempotency-Key stands for is no longer kept "
                "(queue.sync_result_ttl_s); send it again with a new key.",
                code="idempotency_key_expired",
                param="Idempotency-Key",
            )
        if existing is not None:
            return Admitted(existing, True)
        if claim.stale:
            # Claimed long ago by a request that never created its job (its API process died,
            # or Redis went away between the two): this request takes the key over.
            claim = idem.take_over(principal.key_id, key, claim, job_id, claim_ttl_s)
        if not claim.first:
            err = Conflict(
                "A request with this Idempotency-Key is still being accepted; retry shortly.",
                code="idempotency_key_in_use",
            )
            err.should_retry = None
            raise err
    try:
        return Admitted(create(job_id), False)
    except Exception as exc:  # nothing was accepted: the key must not stand for a job that is not
        # But with Redis unreachable mid-step, create.lua may have run and only its reply was
        # lost: that job runs. The key is kept while the job exists (checked in the release's
        # own step), so the client's retry is answered with it instead of running it again.
        unless_created = isinstance(exc, BACKEND_DOWN)
        repair.soon(
            lambda: services.stores.idempotency.release(
                principal.key_id, key, job_id, unless_created
            ),
            "releasing an Idempotency-Key",
            job_id,
        )
        raise


def admit_limited(
    services: Services,
    principal: Principal,
    route: str,
    raw_body: Any,
    job_id: str,
    intake: Intake,
    create: Callable[[str], Job],
    claim_ttl_s: int | None = None,
) -> Admitted:
    """``admit`` behind the key's limits: what was taken is given back when no new job came
    of the request (refused, or a replayed Idempotency-Key)."""
    taken = take(services, principal, job_id, intake.tokens, new_job=intake.hit is None)
    try:
        admitted = admit(services, principal, route, raw_body, job_id, create, claim_ttl_s)
    except BaseException:
        taken.give_back()
        raise
    if admitted.replayed:
        taken.give_back()
    return admitted


def _await_record(services: Services, job_id: str, timeout_s: float = 2.0) -> Job | None:
    """The claiming request writes the record right after its claim; give it a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = services.stores.jobs.get(job_id)
        if job is not None or time.monotonic() >= deadline:
            return job
        time.sleep(0.02)

"""A request answered on the spot: its job accepted, then waited for until it ends.

The wait is registered before the job is published, so its completion notice cannot be missed
(``gateway_api/waiter.py``); a repeated ``Idempotency-Key`` waits for the earlier request's job.
"""

from __future__ import annotations

import time

from gateway_api.accept import WAIT_GRACE_S, accept
from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from gateway_api.submission import Accepted, Submission
from shared.state.job_record import Job, new_job_id


def read_outcome(services: Services, job_id: str) -> Job | None:
    """The finished job as its completion notice told it, else as Redis holds it."""
    return services.hub.outcome(job_id) or services.stores.jobs.get_outcome(job_id)


def accept_and_wait(
    services: Services, principal: Principal, sub: Submission, notes: Notes
) -> tuple[Accepted, Job | None]:
    """``accept``, then the job as it ended, or None or the job still running when its deadline
    (and a grace) passed first. A request the cache answered has no job to wait for."""
    job_id = new_job_id()
    with services.hub.expect(job_id) as waiter:  # before the publish: no notice is missed
        got = accept(services, principal, sub, notes, job_id)
        job = got.job
        if job is None:
            return got, None
        if job.terminal:  # answered from the cache under an Idempotency-Key: no notice comes
            return got, job
        timeout = max(0.0, job.deadline_at - time.time()) + WAIT_GRACE_S
        if got.replayed:  # the same request again: the same job, the same answer
            jobs = services.stores.jobs
            final = services.hub.wait_then_read(
                job.id, timeout, jobs.poll, jobs.get_public, job.notify
            )
        else:
            final = waiter.wait(timeout, lambda: read_outcome(services, job_id), job_id)
    return got, final

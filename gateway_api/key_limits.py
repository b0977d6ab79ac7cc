"""The front door's per-key limits: take them before a job is accepted, report them on every
answer (``x-ratelimit-*``), refuse with 429 ``rate_limit_exceeded`` and ``Retry-After``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Response

from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from shared import metrics
from shared.errors import RateLimited
from shared.state import fleet_stats
from shared.state.ratelimit import KeyLimits, Verdict

log = logging.getLogger(__name__)

_WHAT = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "concurrency": "concurrent jobs",
}


@dataclass
class Taken:
    """What a request took from its key's limits: a job slot (held until the job ends) and
    tokens; ``give_back`` returns both when no new job came of the request."""

    services: Services
    principal: Principal
    job_id: str
    limits: KeyLimits | None = None
    slot: bool = False
    tokens: int = 0

    def give_back(self) -> None:
        if self.limits is None:
            return
        limits, self.limits = self.limits, None
        try:
            if self.slot:
                self.services.stores.limiter.release(self.principal.key_id, self.job_id)
            if self.tokens and limits.tpm:
                self.services.stores.limiter.adjust_tokens(
                    self.principal.key_id, limits.tpm, -self.tokens
                )
        except Exception:  # the slot frees itself; a lost refund errs on the safe side
            log.warning("could not give back a rate-limit reservation", exc_info=True)


def _refusal(v: Verdict, tokens: int) -> RateLimited:
    lim = v.limits
    if v.reason == "too_large":
        err = RateLimited(
            f"Request too large: about {tokens} tokens, over this key's limit of {lim.tpm} "
            "tokens per minute. Send fewer tokens or a lower max_tokens.",
            code="rate_limit_exceeded",
        )
        err.should_retry = False
        return err
    limit = {"rpm": lim.rpm, "tpm": lim.tpm, "concurrency": lim.max_concurrent}[v.reason]
    return RateLimited(
        f"Rate limit reached for this API key: {limit} {_WHAT[v.reason]}. "
        f"Retry after {max(v.retry_after_s, 0.001):.3g}s.",
        retry_after=v.retry_after_s,
    )


def take(
    services: Services,
    principal: Principal,
    job_id: str,
    tokens: int,
    notes: Notes,
    new_job: bool = True,
) -> Taken:
    """Take a request (and ``tokens`` and a job slot when ``new_job``) from the key's limits,
    or raise 429 ``rate_limit_exceeded`` with ``Retry-After``; the verdict goes in ``notes``."""
    limits = KeyLimits.for_key(services.settings, principal.key_id)
    if not limits.any:
        return Taken(services, principal, job_id)
    cost = tokens if new_job else 0
    verdict = services.stores.limiter.check(
        principal.key_id, limits, tokens=cost, job_id=job_id, take_slot=new_job
    )
    notes.verdict = verdict
    if not verdict.allowed:
        metrics.RATE_LIMITED.labels(verdict.reason).inc()
        services.stores.stats.add(fleet_stats.RATE_LIMITED)
        raise _refusal(verdict, tokens)
    return Taken(
        services,
        principal,
        job_id,
        limits,
        slot=new_job and bool(limits.max_concurrent),
        tokens=cost if limits.tpm else 0,
    )


def add_headers(resp: Response, services: Services, notes: Notes) -> None:
    """``x-ratelimit-*`` on every answer to a key with limits (read-only when nothing was taken)."""
    verdict, principal = notes.verdict, notes.principal
    if verdict is None and principal is not None:
        limits = KeyLimits.for_key(services.settings, principal.key_id)
        if limits.rpm or limits.tpm:
            try:
                verdict = services.stores.limiter.check(principal.key_id, limits, consume=False)
            except Exception:  # a status header is not worth failing the answer for
                log.warning("could not read the rate limit state", exc_info=True)
    if verdict is not None:
        resp.headers.update(verdict.headers())

"""What one delivery of a job comes to: the status and fields to write, or when to park it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import GatewayError, GatewayTimeout, stored_error
from shared.spend.usage import Charge
from shared.state.job_record import EXPIRED, FAILED


@dataclass
class Outcome:
    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    park_until: float | None = None  # set: park the job (status RETRYING or QUEUED) until then
    # A success still to record, with the result, in one pipeline: (breaker, probe token).
    breaker_success: tuple[str, str] | None = None
    remember: bool = False  # store the result in the response cache
    charge: Charge | None = None  # what the provider billed for this delivery's answer


def failed(err: GatewayError, status: str = FAILED) -> Outcome:
    return Outcome(status, {"error": stored_error(err)})


def expired() -> Outcome:
    return failed(
        GatewayTimeout(
            "the job's deadline passed before a provider answered", code="deadline_exceeded"
        ),
        EXPIRED,
    )


def with_attempts(outcome: Outcome, attempts: list[dict[str, Any]]) -> Outcome:
    outcome.fields["attempts"] = attempts
    return outcome

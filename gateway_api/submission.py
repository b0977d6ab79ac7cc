"""What a door hands to ``accept`` (``gateway_api/accept.py``), and what it gets back.

A door (a POST route) reads its headers, parses its body into the provider-facing request and
fills in a ``Submission``; everything after that is the same for every door.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from shared.chat_request import ChatRequest
from shared.state.cache import Entry
from shared.state.job_record import Job


class Respond(enum.Enum):
    """How the answer goes back to the client."""

    WAIT = "wait"  # this request waits for the job and answers with its result
    STREAM = "stream"  # this request relays the job's stream as it is written
    ASYNC = "async"  # 202 with the job object: the client polls (or gets a webhook)

    @property
    def here(self) -> bool:
        """Is the answer given on this request (so kept a short while once it is given)?"""
        return self is not Respond.ASYNC


@dataclass(frozen=True)
class Submission:
    kind: str  # the job's kind: what it asks of providers ("chat", ...)
    door: str  # the route it came through ("chat", "jobs", ...): metrics and dashboard
    request: ChatRequest  # the provider-facing request, model resolved, with its "gateway" part
    route: str  # with ``body``, what an Idempotency-Key stands for
    body: Any  # the body as the client sent it
    priority: str
    deadline_s: float
    respond: Respond
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    cache_control: str | None = None  # the request's Cache-Control header


@dataclass(frozen=True)
class Accepted:
    """A job (new, or the one a repeated Idempotency-Key stands for), or, for a request
    answered on the spot, the cache entry that answers it (no job was made)."""

    job: Job | None
    replayed: bool = False  # an earlier request with the same Idempotency-Key made ``job``
    hit: Entry | None = None

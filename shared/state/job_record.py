"""The job record: its statuses and priorities, the ``Job`` value object and how its fields are
written in the job's Redis hash (``Keys.job``). The store of records and every state change on
them is ``shared.state.jobs``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from shared.keys import Keys
from shared.wire import fastjson

QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
SUCCEEDED, FAILED, CANCELLED, EXPIRED = "succeeded", "failed", "cancelled", "expired"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
PRIORITIES = ("interactive", "normal", "batch")
# What a job asks of providers and how its answer is built, one per API family: a worker runs
# only the kinds it knows (workers/kinds.py) and puts any other back for another worker.
KINDS = ("chat", "responses", "messages", "embeddings")

_JSON_FIELDS = ("request", "result", "error", "attempts", "metadata", "options", "exhausted")
_FLOAT_FIELDS = ("created_at", "started_at", "finished_at", "deadline_at")


def new_job_id() -> str:
    """``job_`` + 128 random bits: opaque and unguessable."""
    return "job_" + secrets.token_hex(16)


def fair_hint(keys: Keys, priority: str, owner: str) -> str:
    """A job's ``fair`` field: "<window key>\n<backlog key>" of its key and priority, so the
    scripts that take it out of the window (begin.lua, terminate.lua) need not build keys."""
    return f"{keys.fair_window(priority, owner)}\n{keys.fair_backlog(priority, owner)}"


@dataclass
class Job:
    id: str
    owner: str
    status: str
    priority: str
    model: str
    request: dict[str, Any]
    created_at: float
    deadline_at: float
    config_version: str = ""
    kind: str = "chat"  # one of KINDS; a record written before kinds existed is a chat job
    # The API entry that created the job ("chat", "jobs", "batches", ...; "" : not recorded),
    # for metrics: bookkeeping, not in the job object.
    door: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    provider: str | None = None
    cache: str | None = None
    degraded: bool = False
    # The request's fields its provider served in a lesser form, comma-separated ("" : none):
    # the answer's X-Gateway-Degraded-Params (shared/wire/capabilities.py).
    degraded_params: str = ""
    attempts: list[dict[str, Any]] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    deliveries: int = 0
    request_id: str | None = None
    options: dict[str, Any] | None = None  # the request's "gateway" extension
    exhausted: list[str] | None = None  # "provider/model" deployments this job is done with
    tokens_estimate: int = 0  # charged to the key's tokens/min at admission; corrected after
    breaker_hint: str = ""  # the first deployment's breaker and health keys (shared/routing.py)
    # The notice channel of the API process whose request waits for this job ("" : none, the
    # fleet's channel): Keys.done_channel_of.
    notify: str = ""
    # A synchronous job's full record is kept this long once it ends, then slimmed
    # (``slim.lua``); 0: kept whole for ``queue.result_ttl_s``.
    keep_s: int = 0
    # Read from a slimmed record: the request, the answer and the error messages of its
    # attempts are gone (``slim.lua``).
    slimmed: bool = False
    # The result as stored (JSON text), set by ``JobStore.get_outcome``: a sync answer sends
    # it as it is instead of decoding and encoding it again.
    raw_result: str | None = None
    # What its provider calls billed (charge.lua), micro-USD; ``cost_unknown``: a call's
    # deployment had no price.
    cost_micro: int = 0
    cost_unknown: bool = False

    @property
    def cost_usd(self) -> float | None:
        """None when unknown: a call was billed at no known price and nothing priced was."""
        if self.cost_unknown and not self.cost_micro:
            return None
        return self.cost_micro / 1_000_000

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Job:
        slimmed = bool(h.get("slim"))
        if slimmed:  # a slimmed record: the rest of its fields in one JSON object (slim.lua)
            slim = fastjson.loads(h["slim"])
            # A charge that landed after the slimming (charge.lua's HINCRBY) adds to the cost.
            late = int(h.get("cost_micro") or 0)
            h = {**{k: v for k, v in h.items() if k != "slim"}, **slim}
            h["cost_micro"] = str(int(slim.get("cost_micro") or 0) + late)
        data: dict[str, Any] = dict(h)
        data["slimmed"] = slimmed
        for name in _JSON_FIELDS:
            value: Any = h.get(name)
            if isinstance(value, str):  # a slim record's nested ones are decoded already
                value = fastjson.loads(value) if value else None
            data[name] = value
        for name in _FLOAT_FIELDS:
            data[name] = float(h[name]) if h.get(name) else None
        data["degraded"] = h.get("degraded") == "1"
        data["deliveries"] = int(h.get("deliveries") or 0)
        data["keep_s"] = int(h.get("keep_s") or 0)
        data["tokens_estimate"] = int(h.get("tokens_estimate") or 0)
        data["cost_micro"] = int(h.get("cost_micro") or 0)
        data["cost_unknown"] = h.get("cost_unknown") == "1"
        data["cache"] = h.get("cache") or None
        data["provider"] = h.get("provider") or None
        data["request_id"] = h.get("request_id") or None
        data["kind"] = h.get("kind") or "chat"
        data["door"] = h.get("door") or ""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_public(self) -> dict[str, Any]:
        """The job object (docs/architecture.md "The job object"): no owner, no request body."""
        return {
            "id": self.id,
            "object": "job",
            "kind": self.kind,
            "status": self.status,
            "priority": self.priority,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "deadline_at": self.deadline_at,
            "config_version": self.config_version,
            "provider": self.provider,
            "model": self.model,
            "cache": self.cache,
            "degraded": self.degraded,
            "attempts": self.attempts or [],
            "cost_usd": self.cost_usd,
            "result": self.result,
            "error": self.error,
            "metadata": self.metadata or {},
        }


def encode_fields(fields: dict[str, Any]) -> dict[str, str]:
    """A record's fields as the hash holds them: JSON fields as JSON, None as "", bools as 1/0."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        if value is None:
            out[key] = ""
        elif key in _JSON_FIELDS:
            out[key] = fastjson.dumps_str(value)
        elif isinstance(value, bool):
            out[key] = "1" if value else "0"
        else:
            out[key] = str(value)
    return out

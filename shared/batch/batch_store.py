"""Batches (OpenAI's Batch API) over the job queue: the record in Redis and every change on it.

A batch is one hash (``Keys.batch``): the Batch object's fields, its owner, and the expansion
cursor (the byte offset in the input file up to which lines have become jobs). Each change
that races is one Lua script: creation, a status move (compare-and-set on the status), an
expansion step (compare-and-set on the cursor: ``batch_expand.lua``). A line's job writes its
output line in the same step that makes it terminal (``batch_note.lua``), so the output holds
one line per ``custom_id``. The batch duty (``workers/batches.py``) steps every batch.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from shared import lua
from shared.keys import Keys
from shared.state.paging import newest_first
from shared.wire import fastjson

VALIDATING, FAILED, IN_PROGRESS, FINALIZING = "validating", "failed", "in_progress", "finalizing"
COMPLETED, EXPIRED, CANCELLING, CANCELLED = "completed", "expired", "cancelling", "cancelled"
ENDED = frozenset({FAILED, COMPLETED, EXPIRED, CANCELLED})
ENDPOINTS = ("/v1/chat/completions",)
WINDOWS = {"24h": 86400.0}
_STAMPS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
_INTS = ("total", "completed", "failed", "ended", "expanded")
RESULTS_PAGE = 1000  # output lines read a round trip at a time
ENDED_TTL_S = 30 * 86400  # an ended batch's record is kept this long


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


def line_job_id(batch_id: str, line: int) -> str:
    """The job of a batch's line (1-based): fixed by the line, so re-expanding makes no
    second job."""
    return f"job_{batch_id.removeprefix('batch_')}_{line}"


@dataclass
class Batch:
    id: str
    owner: str
    status: str
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    expires_at: int
    metadata: dict[str, Any] | None = None
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    ended: int = 0  # line jobs terminal, whatever their status
    expanded: int = 0  # lines made into jobs
    # "<byte offset>:<lines read>" in the input file after the last line expanded
    cursor: str = "0:0"

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Batch:
        data: dict[str, Any] = {k: v for k, v in h.items() if k in cls.__dataclass_fields__}
        for name in _STAMPS:
            data[name] = int(float(h[name])) if h.get(name) else None
        for name in _INTS:
            data[name] = int(h.get(name) or 0)
        for name in ("metadata", "errors"):
            data[name] = json.loads(h[name]) if h.get(name) else None
        for name in ("output_file_id", "error_file_id"):
            data[name] = h.get(name) or None
        return cls(**data)

    def to_public(self) -> dict[str, Any]:
        """OpenAI's Batch object."""
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": self.expired_at,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata or {},
        }


def _flat(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        out += [k, "" if v is None else str(v)]
    return out


class BatchStore:
    def __init__(self, client: redis.Redis, keys: Keys, ended_ttl_s: int) -> None:
        self.r, self.keys, self.ttl = client, keys, int(ended_ttl_s)
        self._create = client.register_script(lua.source("batch_create"))
        self._move = client.register_script(lua.source("batch_move"))
        self._expand = client.register_script(
            lua.as_function("hset_json", "hset_json") + lua.source("batch_expand")
        )

    def create(
        self,
        owner: str,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        window_s: float,
        metadata: dict[str, Any] | None,
    ) -> Batch:
        now = int(time.time())
        batch = Batch(
            id=new_batch_id(),
            owner=owner,
            status=VALIDATING,
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=completion_window,
            created_at=now,
            expires_at=int(now + window_s),
            metadata=metadata or {},
        )
        fields = {
            "id": batch.id,
            "owner": owner,
            "status": VALIDATING,
            "endpoint": endpoint,
            "input_file_id": input_file_id,
            "completion_window": completion_window,
            "created_at": now,
            "expires_at": batch.expires_at,
            "metadata": batch.metadata,
            "cursor": "0:0",
        }
        k = self.keys
        self._create(
            keys=[k.batch(batch.id), k.owner_batches(owner), k.batches_active],
            args=[batch.id, now, *_flat(fields)],
        )
        return batch

    def get(self, batch_id: str, owner: str | None = None) -> Batch | None:
        if not batch_id.startswith("batch_"):
            return None
        h: Any = self.r.hgetall(self.keys.batch(batch_id))
        if not h or (owner is not None and h.get("owner") != owner):
            return None
        return Batch.from_hash(h)

    def page(self, owner: str, limit: int, after: str | None) -> tuple[list[Batch], bool]:
        """The owner's batches, newest first, after the batch ``after``."""
        ids, more = newest_first(self.r, self.keys.owner_batches(owner), limit, after)
        pipe = self.r.pipeline(transaction=False)
        for batch_id in ids:
            pipe.hgetall(self.keys.batch(batch_id))
        return [Batch.from_hash(h) for h in pipe.execute() if h], more

    def active(self, limit: int = 1000) -> list[str]:
        raw: Any = self.r.zrange(self.keys.batches_active, 0, limit - 1)
        return [str(i) for i in raw]

    def move(self, batch_id: str, from_: tuple[str, ...], to: str, **fields: Any) -> bool:
        """Change the status if it is one of ``from_``; True if moved."""
        k = self.keys
        res: Any = self._move(
            keys=[
                k.batch(batch_id),
                k.batches_active,
                k.batch_results(batch_id),
                k.webhook_outbox,
            ],
            args=[batch_id, ",".join(from_), to, self.ttl, *_flat(fields)],
        )
        return str(res[0]) == "ok"

    def expand(
        self,
        batch: Batch,
        jobs: list[dict[str, str]],
        new_cursor: str,
        expanded: int,
        job_ttl_s: int,
    ) -> int:
        """Make ``jobs`` (each a job record's fields, as strings) held batch-priority jobs of
        the batch's owner and move the cursor; 1 done, 0 the cursor had moved, -1 the batch
        is no longer in progress."""
        k = self.keys
        return int(
            self._expand(
                keys=[
                    k.batch(batch.id),
                    k.fair_backlog("batch", batch.owner),
                    k.fair_owners("batch"),
                    k.fair_held("batch"),
                    *[k.job(j["id"]) for j in jobs],
                ],
                args=[
                    batch.cursor,
                    new_cursor,
                    expanded,
                    job_ttl_s,
                    batch.owner,
                    *[fastjson.dumps_str(j) for j in jobs],
                ],
            )
        )

    def results(self, batch_id: str) -> Iterator[bytes]:
        """The batch's output lines so far (each one JSON object, as written), a page per
        round trip."""
        key, start = self.keys.batch_results(batch_id), 0
        while True:
            page: Any = self.r.lrange(key, start, start + RESULTS_PAGE - 1)
            for line in page:
                yield line.encode() if isinstance(line, str) else line
            if len(page) < RESULTS_PAGE:
                return
            start += RESULTS_PAGE

"""Batches (OpenAI's Batch API) over the job queue: the record in Redis and every change on it.

A batch is one hash (``Keys.batch``): the Batch object's fields, its owner, and the expansion
cursor (the byte offset in the input file up to which lines have become jobs). Each change
that races is one Lua script: creation (within the owner's ``batches.max_active_per_key``), a
status move (compare-and-set on the status), an expansion step (compare-and-set on the cursor:
``batch_expand.lua``). A line's job writes its output line in the same step that makes it
terminal (``batch_note.lua``), so the output holds one line per ``custom_id``. The batch duty
(``workers/batches.py``) steps every batch, serving the API keys in turn (``Keys.batch_turns``)
and each key's batches in turn (``Keys.owner_active_batches``).
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
_INTS = ("total", "completed", "failed", "ended", "expanded", "finalize_attempts")
RESULTS_PAGE = 1000  # output lines read a round trip at a time
ENDED_TTL_S = 30 * 86400  # an ended batch's record is kept this long
ADOPT_PAGE = 100  # batches of the old worklist moved into the turns per duty round


class TooManyActive(Exception):
    """The owner has ``bound`` batches not yet ended already (``batches.max_active_per_key``)."""

    def __init__(self, active: int, bound: int) -> None:
        super().__init__(f"{active} batches not yet ended, of {bound} allowed")
        self.active, self.bound = active, bound


@dataclass(frozen=True)
class ExpandLine:
    """A line of an expansion step: its job's record fields (as strings; None: the line is
    answered at once, with ``answer``), its budget reservation (micro-USD), the cursor after it,
    and the output line that answers it at once (always for ``job`` None; with a budget, when
    its reservation can never fit)."""

    job_id: str
    job: dict[str, str] | None
    hold: int
    cursor: str
    answer: bytes


@dataclass(frozen=True)
class Expanded:
    """An expansion step's outcome (``batch_expand.lua``): ``why`` is "ok" (every line given was
    taken), "room" or "budget" (it stopped there: the rest wait), "moved" (another step moved
    the cursor) or "ended" (the batch is no longer in progress); ``taken``: lines taken."""

    why: str
    taken: int


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


def line_job_id(batch_id: str, line: int) -> str:
    """The job of a batch's line (1-based): fixed by the line, so re-expanding makes no
    second job."""
    return f"job_{batch_id.removeprefix('batch_')}_{line}"


def batch_request_id(job_id: str) -> str:
    """The ``id`` of a line's output or error line (as ``batch_note.lua`` writes it too)."""
    return "batch_req_" + job_id.removeprefix("job_")


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
    expanded: int = 0  # lines made into jobs, or answered at once (batch_expand.lua)
    # "<byte offset>:<lines read>" in the input file after the last line expanded
    cursor: str = "0:0"
    finalize_attempts: int = 0  # finalizes that could not store the output files
    finalize_retry_at: float = 0.0  # the next finalize waits until then (epoch s)

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
        data["finalize_retry_at"] = float(h.get("finalize_retry_at") or 0)
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
        self._adopt = client.register_script(lua.source("batch_adopt"))
        self._forget = client.register_script(lua.source("batch_forget"))
        self._expand = client.register_script(
            lua.with_functions(
                "batch_expand", "hset_json", *lua.BUDGET_FUNCTIONS, libraries=lua.BUDGET_HOLD
            )
        )

    def create(
        self,
        owner: str,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        window_s: float,
        metadata: dict[str, Any] | None,
        max_active: int = 2**31,
    ) -> Batch:
        """A new batch, ``validating``; raises TooManyActive when ``owner`` has ``max_active``
        batches not yet ended."""
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
        created, active = self._create(
            keys=[
                k.batch(batch.id),
                k.owner_batches(owner),
                k.batches_active,
                k.owner_active_batches(owner),
                k.batch_turns,
            ],
            args=[batch.id, now, owner, max_active, *_flat(fields)],
        )
        if not int(created):
            raise TooManyActive(int(active), max_active)
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
        """The oldest ``limit`` batches not yet ended, every key's (the dashboard's list)."""
        raw: Any = self.r.zrange(self.keys.batches_active, 0, limit - 1)
        return [str(i) for i in raw]

    def turns(self) -> list[str]:
        """The API keys with a batch not yet ended, the one served longest ago first."""
        raw: Any = self.r.zrange(self.keys.batch_turns, 0, -1)
        return [str(o) for o in raw]

    def queues(self, owners: list[str], per_key: int) -> dict[str, list[str]]:
        """Each key's batches not yet ended, the one stepped longest ago first, ``per_key`` at
        most."""
        pipe = self.r.pipeline(transaction=False)
        for owner in owners:
            pipe.zrange(self.keys.owner_active_batches(owner), 0, per_key - 1)
        return {o: [str(i) for i in ids] for o, ids in zip(owners, pipe.execute(), strict=True)}

    def served(self, owner: str, batch_id: str) -> None:
        """The batch, and its key, go to the back of their turns (unless the batch ended)."""
        now = time.time()
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.keys.owner_active_batches(owner), {batch_id: now}, xx=True)
        pipe.zadd(self.keys.batch_turns, {owner: now}, xx=True)
        pipe.execute()

    def forget(self, owner: str, batch_id: str) -> None:
        """A batch whose record is gone leaves the worklists (``batch_forget.lua``)."""
        k = self.keys
        self._forget(
            keys=[
                k.batch(batch_id),
                k.batches_active,
                k.owner_active_batches(owner),
                k.batch_turns,
            ],
            args=[batch_id, owner],
        )

    def adopt_old(self) -> int:
        """Move a page of the old worklist (``Keys.batches_active_before_turns``) into the turns;
        returns how many it moved (0 once it is drained: one ZRANGE a round)."""
        k = self.keys
        old = k.batches_active_before_turns
        page: Any = self.r.zrange(old, 0, ADOPT_PAGE - 1)
        ids = [str(i) for i in page]
        if not ids:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for batch_id in ids:
            pipe.hget(k.batch(batch_id), "owner")
        for batch_id, owner in zip(ids, pipe.execute(), strict=True):
            self._adopt(
                keys=[
                    k.batch(batch_id),
                    old,
                    k.batches_active,
                    k.owner_active_batches(owner or ""),
                    k.batch_turns,
                ],
                args=[batch_id, owner or ""],
            )
        return len(ids)

    def move(self, batch: Batch, from_: tuple[str, ...], to: str, **fields: Any) -> bool:
        """Change the status if it is one of ``from_``; True if moved."""
        k = self.keys
        res: Any = self._move(
            keys=[
                k.batch(batch.id),
                k.batches_active,
                k.batch_results(batch.id),
                k.webhook_outbox,
                k.owner_active_batches(batch.owner),
                k.batch_turns,
            ],
            args=[batch.id, ",".join(from_), to, self.ttl, *_flat(fields)],
        )
        return str(res[0]) == "ok"

    def room(self, owner: str) -> tuple[int, int]:
        """(jobs queued at batch priority, pending and held, every key's; jobs in ``owner``'s
        batch-priority backlog): what ``batch_expand.lua`` bounds, read to size a step."""
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(k.pending("batch"))
        pipe.get(k.fair_held("batch"))
        pipe.llen(k.fair_backlog("batch", owner))
        pending, held, backlog = pipe.execute()
        return int(pending) + int(held or 0), int(backlog)

    def expand(
        self,
        batch: Batch,
        lines: list[ExpandLine],
        end_cursor: str,
        job_ttl_s: int,
        max_queued: int,
        max_backlog: int,
        budget: tuple[int, str] | None,
    ) -> Expanded:
        """Take ``lines`` in order (``batch_expand.lua``): each becomes a held batch-priority job
        of the batch's owner, or is answered at once; the cursor moves past the lines taken
        (to ``end_cursor`` when all were). Jobs stop at ``max_queued`` batch-priority jobs
        queued in all, ``max_backlog`` in the owner's backlog, and, with ``budget`` (micro-USD,
        period), where a line's reservation does not fit now."""
        k = self.keys
        args: list[Any] = [
            batch.cursor,
            end_cursor,
            batch.expanded,
            job_ttl_s,
            batch.owner,
            max_queued,
            max_backlog,
            *(budget if budget else ("", "")),
        ]
        for line in lines:
            job = fastjson.dumps_str(line.job) if line.job is not None else ""
            args += [job, line.hold, line.cursor, line.answer]
        why, taken = self._expand(
            keys=[
                k.batch(batch.id),
                k.fair_backlog("batch", batch.owner),
                k.fair_owners("batch"),
                k.fair_held("batch"),
                k.pending("batch"),
                k.budget(batch.owner),
                k.batch_results(batch.id),
                *[k.job(line.job_id) for line in lines],
            ],
            args=args,
        )
        return Expanded(str(why), int(taken))

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

"""The job records in Redis and every state change on them (the record itself:
``shared.state.job_record``).

A job is one Redis hash (``Keys.job``). State changes that race (a worker taking the job,
finishing it, a client cancelling it, the reaper reclaiming it) are each one Lua script in
``shared/lua``. Reads take only the fields their caller needs (``get_fields``: a poll reads
the status, a job object everything but the request); ``get`` (``HGETALL``) is the workers'.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from shared import lua
from shared.errors import GatewayError, stored_error
from shared.keys import Keys
from shared.spend.budget import BudgetHold, BudgetState
from shared.state import notice
from shared.state.job_record import QUEUED, Job, encode_fields, fair_hint
from shared.state.paging import newest_first

# What a sync answer reads of a finished job (``JobStore.get_outcome``): "id" first, so a
# missing record shows as None there.
_OUTCOME_FIELDS = (
    "id",
    "owner",
    "status",
    "priority",
    "model",
    "created_at",
    "deadline_at",
    "provider",
    "cache",
    "degraded",
    "degraded_params",
    "result",
    "error",
    "cost_micro",
    "cost_unknown",
    "slim",
)

# What a job object (``Job.to_public``) and its answer's headers are made of, with the record's
# owner (who may read it) and notice channel (who waits for it): every field but the request
# (up to the body limit) and the workers' bookkeeping. "id" first, as ``get_fields`` needs.
PUBLIC_FIELDS = (
    "id",
    "owner",
    "kind",
    "status",
    "priority",
    "model",
    "created_at",
    "started_at",
    "finished_at",
    "deadline_at",
    "config_version",
    "provider",
    "cache",
    "degraded",
    "degraded_params",
    "attempts",
    "result",
    "error",
    "metadata",
    "cost_micro",
    "cost_unknown",
    "notify",
    "slim",  # a slimmed record keeps the rest in one field (slim.lua)
)
# Where a job stands, all a poll needs to know whether it has ended.
STATUS_FIELDS = ("id", "status")
# What ``Job`` cannot be built without, for a read that does not take them.
_UNREAD = {"owner": "", "status": "", "priority": "", "model": ""}


def _job_of(fields: Sequence[str], values: Sequence[Any]) -> Job | None:
    """The job as ``fields`` ("id" first) of its record hold them (HMGET's ``values``); the
    fields not read keep their defaults. None: no record."""
    if values[0] is None:
        return None
    h = {k: v for k, v in zip(fields, values, strict=True) if v is not None}
    return Job.from_hash({**_UNREAD, **h})


# Told in a finish's completion notice, never written to the record by it: ``charge.lua`` adds
# each delivery's charge to the record's cost (HINCRBY), so the charge of a delivery whose
# lease lapsed, landing between this delivery's begin and its finish, is not written over.
_NOTICE_ONLY = ("cost_micro",)
# One write of another store riding in a finish's pipeline (see JobStore.finish_with).
Step = Callable[[Pipeline | None], Any]


@dataclass(frozen=True)
class GroupTake:
    """Take the group gathered behind a group message's first job, in the same step as that
    job's lease (``begin.lua`` + ``group_take.lua``): up to ``most`` ids; ``message`` is sent
    for any left over."""

    queue: str
    most: int
    message: bytes
    ttl_ms: int


@dataclass(frozen=True)
class Created:
    """What ``JobStore.create`` did: ``outcome`` ok | held | full_depth | full_age | budget;
    ``left``: the key's budget left after this job's reservation (micro-USD; -1: no budget)."""

    outcome: str
    value: float = 0.0
    left: int = -1
    budget: BudgetState | None = None


class Begin(Enum):
    OK = "ok"
    MISSING = "missing"
    TERMINAL = "terminal"
    LEASED = "leased"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class BeginResult:
    outcome: Begin
    deliveries: int = 0
    job: Job | None = None  # the record as the lease was taken (OK and EXHAUSTED)
    # The hinted breaker's state and its provider's "healthy" flag, read with the lease.
    breaker_peek: tuple[str, str] | None = None
    # The group taken with the lease (``begin(..., group=...)``), oldest first.
    taken: list[str] | None = None
    # Jobs of the same key and priority held in its fair-share backlog (shared/state/fair.py): this
    # job left the key's window, so the caller releases the next.
    backlog: int = 0


def _pairs(fields: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for k, v in encode_fields(fields).items():
        flat += [k, v]
    return flat


class JobStore:
    def __init__(self, client: redis.Redis, keys: Keys, result_ttl_s: int) -> None:
        self.r = client
        self.keys = keys
        self.ttl = int(result_ttl_s)
        self._begin = client.register_script(
            lua.as_function("group_take", "take_group") + lua.source("begin")
        )
        self._renew = client.register_script(lua.source("renew"))
        self._update = client.register_script(lua.source("update"))
        # What follows a job's end, the same in both scripts that end one.
        note = lua.prelude("batch_note", "job_ended", libraries=lua.BUDGET_HOLD)
        self._finish = client.register_script(note + lua.source("finish"))
        self._release = client.register_script(lua.source("release"))
        self._reclaim = client.register_script(lua.source("reclaim"))
        self._terminate = client.register_script(note + lua.source("terminate"))
        self._redeliver = client.register_script(lua.source("redeliver"))
        self._defer = client.register_script(lua.source("defer"))
        self._create = client.register_script(
            lua.with_functions("create", *lua.BUDGET_FUNCTIONS, libraries=lua.BUDGET_HOLD)
        )
        self._due_claim = client.register_script(lua.source("due_claim"))
        self._group_take = client.register_script(lua.source("group_take"))
        self._watch = client.register_script(lua.source("watch"))
        self._slim = client.register_script(lua.source("slim"))
        self._hold = client.register_script(lua.source("hold"))

    # -- the API's side ------------------------------------------------------------------
    def create(
        self,
        job: Job,
        max_depth: int | None = None,
        max_age_s: float | None = None,
        publish: tuple[str, bytes] | None = None,
        group_ttl_ms: int = 0,
        fair_room: int = 0,
        hold: BudgetHold | None = None,
    ) -> Created:
        """Create the record, refusing a queued job when the backlog is at ``max_depth`` or its
        oldest job is older than ``max_age_s``. ``publish``: (queue, task message) to push to
        the broker's list in the same step (the broker is this Redis database); with
        ``group_ttl_ms`` the message is a group's, sent only when none is outstanding, and the
        job joins the queue's group (group commit). ``fair_room``:
        the key's fair-share window (0: none); a job that finds it full is held in the key's
        backlog (shared/state/fair.py). ``hold``: the budget reservation a queued job must find
        room for, checked and taken in the same step. Outcomes: "ok", "held" (nothing was
        published), "full_depth" (value: depth), "full_age" (value: oldest publish time),
        "budget" (``budget``: the key's state)."""
        fields = {
            "id": job.id,
            "owner": job.owner,
            "status": job.status,
            "priority": job.priority,
            "kind": job.kind,
            "door": job.door,
            "model": job.model,
            "request": job.request,
            "created_at": job.created_at,
            "deadline_at": job.deadline_at,
            "config_version": job.config_version,
            "metadata": job.metadata or {},
            "attempts": [],
            "deliveries": 0,
            "degraded": job.degraded,
            "cache": job.cache,
            "request_id": job.request_id,
            "options": job.options or {},
            "exhausted": [],
            "tokens_estimate": job.tokens_estimate,
            "breaker_hint": job.breaker_hint,
        }
        if job.notify:
            fields["notify"] = job.notify
        if job.keep_s:  # slimmed keep_s after it ends (job_ended.lua, slim.lua)
            fields["keep_s"] = job.keep_s
        if (job.options or {}).get("webhook"):  # job events (finish.lua, terminate.lua)
            fields["webhook"] = "1"
        k = self.keys
        if fair_room:
            fields["fair"] = fair_hint(k, job.priority, job.owner)
        queue = publish[0] if publish else job.priority
        if job.result is not None:
            fields.update(
                result=job.result,
                started_at=job.started_at,
                finished_at=job.finished_at,
                provider=job.provider,
            )
        res = self._create(
            keys=[
                k.job(job.id),
                k.owner_jobs(job.owner),
                k.pending(job.priority),
                k.stats,
                k.broker_queue(queue),
                k.group(queue),
                k.group_sent(queue),
                k.fair_window(job.priority, job.owner),
                k.fair_backlog(job.priority, job.owner),
                k.fair_owners(job.priority),
                k.fair_held(job.priority),
                k.budget(job.owner),
            ],
            args=[
                job.id,
                job.created_at,
                self.ttl,
                max_depth if max_depth is not None else 2**62,
                max_age_s if max_age_s is not None else 2**62,
                "1" if job.status == QUEUED else "0",
                publish[1] if publish else "",
                group_ttl_ms if publish else 0,
                fair_room if job.status == QUEUED else 0,
                job.owner,
                *(hold.args() if hold else ("", "", 0)),
                *_pairs(fields),
            ],
        )
        outcome = str(res[0])
        if outcome == "budget":
            return Created(outcome, budget=BudgetState(int(res[1]), int(res[2]), int(res[3])))
        left = int(res[2]) if len(res) > 2 and outcome in ("ok", "held") else -1
        return Created(outcome, float(res[1]) if len(res) > 1 else 0.0, left=left)

    def watch(self, job_id: str) -> bool:
        """Before waiting for a job this process did not create: its notice is then sent to
        every API process (``watch.lua``). False if there is no such job."""
        return bool(self._watch(keys=[self.keys.job(job_id)]))

    def _group_step(self, group: GroupTake) -> tuple[list[str], list[Any]]:
        """group_take.lua's KEYS and ARGV, alone or after begin.lua's own."""
        q = group.queue
        keys = [self.keys.group(q), self.keys.group_sent(q), self.keys.broker_queue(q)]
        return keys, [group.most, group.message, group.ttl_ms]

    def take_group(self, group: GroupTake) -> list[str]:
        """Take up to ``group.most`` of the job ids gathered for its queue."""
        keys, args = self._group_step(group)
        return [str(i) for i in self._group_take(keys=keys, args=args)]

    def get(self, job_id: str) -> Job | None:
        h = self.r.hgetall(self.keys.job(job_id))
        return Job.from_hash(h) if h else None  # type: ignore[arg-type]

    def get_outcome(self, job_id: str) -> Job | None:
        """The job without its request, attempts and other bulk, the result left as JSON text
        (``raw_result``): what a waiting sync request needs, at a fraction of the read."""
        values: Any = self.r.hmget(self.keys.job(job_id), _OUTCOME_FIELDS)
        if values[0] is None:
            return None
        h = {k: v for k, v in zip(_OUTCOME_FIELDS, values, strict=True) if v is not None}
        raw = h.pop("result", None) or None
        job = Job.from_hash(h)
        job.raw_result = raw
        return job

    def get_fields(self, job_id: str, fields: Sequence[str]) -> Job | None:
        """The job as only ``fields`` of its record ("id" first) describe it, e.g.
        ``STATUS_FIELDS`` for a poll, ``PUBLIC_FIELDS`` for a job object."""
        values: Any = self.r.hmget(self.keys.job(job_id), fields)
        return _job_of(fields, values)

    def poll(self, job_id: str) -> Job | None:
        """Where the job stands (its id and status only), for a loop waiting for its end."""
        return self.get_fields(job_id, STATUS_FIELDS)

    def get_public(self, job_id: str) -> Job | None:
        """The job as its job object shows it (with owner and notice channel; no request)."""
        return self.get_fields(job_id, PUBLIC_FIELDS)

    def get_many(self, job_ids: Iterable[str], fields: Sequence[str]) -> list[Job | None]:
        """``get_fields`` of each job, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), fields)
        return [_job_of(fields, values) for values in pipe.execute()]

    def list_for_owner(
        self, owner: str, limit: int, after: str | None = None
    ) -> tuple[list[Job], bool]:
        """The owner's jobs (``PUBLIC_FIELDS``), newest first; ``after`` is the last id of the
        previous page. Reads one page of the owner's index."""
        ids, more = newest_first(self.r, self.keys.owner_jobs(owner), limit, after)
        return [j for j in self.get_many(ids, PUBLIC_FIELDS) if j is not None], more

    def terminate(self, job_id: str, status: str, error: GatewayError) -> tuple[str, str | None]:
        """Make a job terminal without a lease. Returns (outcome, previous terminal status)."""
        now = time.time()
        res = self._terminate(
            keys=[
                self.keys.job(job_id),
                *self.keys.pendings(),
                self.keys.stats,
                self.keys.webhook_outbox,
                self.keys.stats_minute(int(now // 60)),
                self.keys.recent_failed,
                self.keys.slim_due,
            ],
            args=[
                status,
                now,
                json.dumps(stored_error(error)),
                self.keys.done_channel,
                job_id,
                self.ttl,
            ],
        )
        return str(res[0]), (str(res[1]) if len(res) > 1 else None)

    # -- the worker's side ---------------------------------------------------------------
    def begin(
        self,
        job_id: str,
        token: str,
        lease_s: float,
        max_deliveries: int,
        group: GroupTake | None = None,
    ) -> BeginResult:
        keys = [
            self.keys.job(job_id),
            self.keys.lease(job_id),
            self.keys.inflight,
            *self.keys.pendings(),
            self.keys.taken,
            self.keys.pending_marks,
        ]
        args: list[Any] = [token, int(lease_s * 1000), time.time(), max_deliveries, job_id]
        if group is not None:
            group_keys, group_args = self._group_step(group)
            keys += group_keys
            args += group_args
        res: Any = self._begin(keys=keys, args=args)
        taken = [str(i) for i in res.pop()] if group is not None else None
        outcome = Begin(str(res[0]))
        if outcome not in (Begin.OK, Begin.EXHAUSTED):
            return BeginResult(outcome, taken=taken)
        flat = res[2]
        record = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
        peek = (str(res[3][0]), str(res[3][1])) if res[3] else None
        backlog = int(res[4])
        return BeginResult(outcome, int(res[1]), Job.from_hash(record), peek, taken, backlog)

    def renew(self, job_id: str, token: str, lease_s: float) -> bool:
        return bool(
            self._renew(
                keys=[self.keys.lease(job_id), self.keys.inflight, self.keys.job(job_id)],
                args=[token, int(lease_s * 1000), time.time(), job_id],
            )
        )

    def update(self, job_id: str, token: str, fields: dict[str, Any]) -> bool:
        return bool(
            self._update(
                keys=[self.keys.job(job_id), self.keys.lease(job_id)],
                args=[token, *_pairs(fields)],
            )
        )

    def finish(self, job_id: str, token: str, status: str, fields: dict[str, Any]) -> int:
        """1 written; 0 the lease was lost; -1 the job was already terminal (e.g. cancelled)."""
        return int(self._finish_call(job_id, token, status, fields, None))

    def finish_with(
        self, job_id: str, token: str, status: str, fields: dict[str, Any], steps: list[Step]
    ) -> tuple[int, list[Any]]:
        """``finish``, with other stores' writes (``steps``: each queues itself on the pipeline
        it is given, or with None runs alone and returns its result) in the same round trip.
        Returns (``finish``'s result, the steps' results)."""
        if not steps:
            return self.finish(job_id, token, status, fields), []

        def finish(p: Pipeline | None) -> Any:
            if p is None:
                return self.finish(job_id, token, status, fields)
            self._finish_call(job_id, token, status, fields, p)
            return None

        every = [*steps, finish]
        pipe = self.r.pipeline(transaction=False)
        for step in every:
            step(pipe)
        # Skip redis-py's SCRIPT EXISTS round trip (on the critical path of every job): the
        # scripts are normally loaded; a step answered NoScript (first use, Redis restarted)
        # is redone on its own, which loads it. The steps are independent of each other.
        pipe.scripts.clear()
        results = pipe.execute(raise_on_error=False)
        for i, (res, step) in enumerate(zip(results, every, strict=True)):
            if isinstance(res, NoScriptError):
                results[i] = step(None)
            elif isinstance(res, Exception):
                raise res
        return int(results[-1]), results[:-1]

    def _finish_call(
        self, job_id: str, token: str, status: str, fields: dict[str, Any], pipe: Pipeline | None
    ) -> Any:
        encoded = encode_fields(fields)
        now = time.time()
        flat: list[str] = []
        for k, v in encoded.items():
            if k not in _NOTICE_ONLY:
                flat += [k, v]
        return self._finish(
            keys=[
                self.keys.job(job_id),
                self.keys.lease(job_id),
                self.keys.inflight,
                self.keys.stats,
                self.keys.webhook_outbox,
                self.keys.stats_minute(int(now // 60)),
                self.keys.recent_failed,
                self.keys.slim_due,
            ],
            args=[
                token,
                job_id,
                status,
                now,
                self.ttl,
                self.keys.done_channel,
                notice.encode(job_id, status, encoded),
                *flat,
            ],
            client=pipe,
        )

    def defer(
        self, job_id: str, token: str, due: float, status: str, fields: dict[str, Any]
    ) -> int:
        """Park a job until ``due`` (the due sweep republishes it); 1 parked, 0 lease lost,
        -1 the job became terminal meanwhile."""
        return int(
            self._defer(
                keys=[
                    self.keys.job(job_id),
                    self.keys.lease(job_id),
                    self.keys.inflight,
                    self.keys.due,
                ],
                args=[token, job_id, due, status, *_pairs(fields)],
            )
        )

    def due_jobs(self, now: float, limit: int = 500) -> list[str]:
        raw: Any = self.r.zrangebyscore(self.keys.due, "-inf", now, start=0, num=limit)
        return [str(i) for i in raw]

    def claim_due(self, job_id: str) -> str | None:
        """Claim a parked job whose time has come; returns its priority (to publish) or None."""
        res = self._due_claim(
            keys=[self.keys.job(job_id), self.keys.due, *self.keys.pendings()],
            args=[job_id, time.time()],
        )
        return str(res) or None

    def park_again(self, job_id: str, due: float) -> None:
        """Put a claimed job back in the due set (its publish failed)."""
        self.r.zadd(self.keys.due, {job_id: due})

    def release(self, job_id: str, token: str) -> bool:
        return bool(
            self._release(
                keys=[
                    self.keys.job(job_id),
                    self.keys.lease(job_id),
                    self.keys.inflight,
                    *self.keys.pendings(),
                ],
                args=[token, job_id, time.time()],
            )
        )

    # -- the reaper's side ---------------------------------------------------------------
    def expired_leases(self, now: float, limit: int = 500) -> list[str]:
        """Ids in the inflight set whose lease should have been renewed by ``now``."""
        return list(self.r.zrangebyscore(self.keys.inflight, "-inf", now, start=0, num=limit))  # type: ignore[arg-type]

    def reclaim(self, job_id: str) -> str | None:
        """Claim a job whose lease expired; returns its priority (to republish) or None."""
        res = self._reclaim(
            keys=[
                self.keys.job(job_id),
                self.keys.lease(job_id),
                self.keys.inflight,
                *self.keys.pendings(),
            ],
            args=[job_id, time.time()],
        )
        return str(res) or None

    def stale_pending(
        self, priority: str, cutoff: float, limit: int = 500, offset: int = 0
    ) -> list[str]:
        """Queued jobs of ``priority`` (re)published at or before ``cutoff``, not begun since,
        oldest first, from the ``offset``-th."""
        key = self.keys.pending(priority)
        return list(self.r.zrangebyscore(key, "-inf", cutoff, start=offset, num=limit))  # type: ignore[arg-type]

    def pending_marks(self) -> dict[str, float]:
        """Per priority, the latest publish time of a job that began (``begin.lua``)."""
        raw: Any = self.r.hgetall(self.keys.pending_marks)
        return {str(k): float(v) for k, v in raw.items()}

    def redeliver(self, priority: str, job_id: str, cutoff: float) -> str | None:
        """Claim a stale queued job for republishing (not one a live worker holds for a slot,
        ``hold_waiting``); returns its priority or None."""
        res = self._redeliver(
            keys=[self.keys.job(job_id), self.keys.pending(priority), self.keys.taken],
            args=[job_id, cutoff, time.time()],
        )
        return str(res) or None

    def broker_lengths(self, queues: list[str]) -> list[int]:
        """Messages waiting in each broker queue (the broker being this Redis database)."""
        pipe = self.r.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(self.keys.broker_queue(queue))
        return [int(n) for n in pipe.execute()]

    def hold_waiting(self, job_ids: list[str], life_s: float, queues: Iterable[str] = ()) -> None:
        """Claim (or renew the claim on) jobs this worker holds while they wait for a slot, for
        ``life_s`` on Redis's clock, and the groups of ``queues`` whose message a waiting job
        carries (``hold.lua``); ``begin.lua`` drops a job's claim as it begins."""
        if job_ids:
            self._hold(
                keys=[self.keys.taken, *(self.keys.group_held(q) for q in queues)],
                args=[life_s, *job_ids],
            )

    def requeued(self, job_id: str) -> None:
        """A job handed back to the broker (a stopping worker): its pending entry is re-scored to
        now, as a republish does, so the pending sweep does not take it for lost."""
        now = time.time()
        pipe = self.r.pipeline(transaction=False)
        for key in self.keys.pendings():
            pipe.zadd(key, {job_id: now}, xx=True)
        pipe.execute()

    def group_alive(self, priority: str, queue: str) -> tuple[float | None, bool]:
        """The oldest job gathered in ``queue``'s group (its publish time; None: none), and
        whether a group message is outstanding or held by a live worker (the gathered jobs are
        then waiting, not lost)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.lindex(self.keys.group(queue), 0)
        pipe.exists(self.keys.group_sent(queue), self.keys.group_held(queue))
        first, alive = pipe.execute()
        if first is None:
            return None, bool(alive)
        score = self.r.zscore(self.keys.pending(priority), first)
        return (float(score) if score is not None else None), bool(alive)

    def trim_taken(self, before: float) -> int:
        """Forget claims that lapsed before ``before`` (their jobs were swept already)."""
        return int(self.r.zremrangebyscore(self.keys.taken, "-inf", before))

    def slim_due(self, now: float, most: int) -> tuple[int, int]:
        """Slim the records of finished synchronous jobs that are due (``slim.lua``); returns
        (records slimmed, ids taken from the due set)."""
        res: Any = self._slim(
            keys=[self.keys.slim_due],
            args=[now, most, self.keys.job(""), self.keys.stream("")],
        )
        return int(res[0]), int(res[1])

    def track(self, job_id: str, due: float) -> None:
        """Put a job (back) in the inflight set, e.g. when its republish failed."""
        self.r.zadd(self.keys.inflight, {job_id: due})

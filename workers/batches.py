"""The batch duty: every running batch is stepped here, inside the worker processes under a
fenced duty lease (``workers.duties``; no singleton). Every step is a compare-and-set in
Redis (``shared/batch/batch_store.py``), so a worker killed mid-step, or a lease that changed hands
mid-step, loses no line and answers none twice: the next step starts from what Redis says.

- ``validating``: every line is checked as the chat route checks a request; any invalid
  line fails the batch with each line's number (OpenAI's behaviour), else it runs.
- ``in_progress``: lines become jobs a step at a time, at most ``batches.expand_ahead``
  unfinished at once (so Redis holds a bounded number of line jobs, however long the file),
  held in the owner's fair-share backlog at batch priority and released by shared/state/fair.py.
  Each line job writes its output line as it ends (``batch_note.lua``). Expansion leaves room:
  batch lines take at most ``BATCH_DEPTH_SHARE`` of ``queue.max_depth`` at batch priority (the
  rest stays for API jobs at that priority), and one key's backlog at most
  ``batches.expand_ahead`` lines, whatever its number of batches. A key with a budget reserves
  each line's cost bound as the line becomes a job (as the API does for a request): a line that
  would fit once the key's requests in flight settle waits; one that would not fit even then
  is answered at once with 429 ``budget_exceeded`` and counted failed.
- An input file deleted (or unreadable) while the batch runs: no more lines start; the batch
  ends ``failed``, naming why, once its lines in flight have ended.
- Past its window the batch's unfinished lines end ``expired``; a cancel ends them
  ``cancelled``; then the output and error files are written and the batch ends. A batch is
  ``cancelling`` until every line job it made has ended (each one, up to the cursor's line,
  blank lines in the input or not), so its counts and files are final once it is ``cancelled``.
- The output and error files are written by ``workers/batch_output.py``.

Each round serves the API keys with batches in turn, the key served longest ago first, one
batch of each key per pass (the one stepped longest ago), until every batch had a step or the
round's time is up: a key with many batches takes one turn per pass, like a key with one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from shared.batch.batch_store import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    EXPIRED,
    FAILED,
    FINALIZING,
    IN_PROGRESS,
    VALIDATING,
    Batch,
    ExpandLine,
    batch_request_id,
    line_job_id,
)
from shared.batch.input_lines import RawLine, parse_cursor
from shared.batch.lines import Line, LineError, custom_id_of, parse_line
from shared.chat_request import ChatRequest
from shared.config.settings import Settings
from shared.errors import BudgetExceeded, GatewayError, InvalidRequest
from shared.routing import breaker_hint
from shared.spend.cost import cost_bound
from shared.state.job_record import QUEUED, TERMINAL, encode_fields, fair_hint
from workers import fair_release
from workers.batch_output import finalize, finalize_due, input_lines
from workers.context import WorkerContext
from workers.runner import WORKER_LOOKUP

log = logging.getLogger(__name__)
BATCH_STEP_INTERVAL_S = 0.25
EXPAND_STEP = 500  # lines per expansion step (one Lua call)
STEP_BUDGET_S = 0.5  # one batch's expansion yields to the next batch after this
ROUND_BUDGET_S = 2.0  # a round yields after this; the next starts with the keys it did not serve
PER_KEY_ROUND = 10  # batches of one key stepped at most per round
# Batch lines queued (pending and held, every key's) stay within this share of
# queue.max_depth at batch priority, so API jobs at batch priority always find the rest.
BATCH_DEPTH_SHARE = 0.5
NO_LISTENER = "batch-lines"  # line jobs' notices go to a channel no API process waits on
Held = Callable[[], bool]


def _always() -> bool:
    return True


def step_batches(ctx: WorkerContext, held: Held = _always) -> int:
    """One round: the keys with batches in turn, one batch of each per pass, until every batch
    listed had a step or ``ROUND_BUDGET_S`` is up; returns how many were stepped."""
    store = ctx.stores.batches
    store.adopt_old()
    started = time.monotonic()
    owners = store.turns()
    queues = store.queues(owners, PER_KEY_ROUND)
    n = 0
    while any(queues.values()):
        for owner in owners:
            if not queues[owner]:
                continue
            if not held() or time.monotonic() - started >= ROUND_BUDGET_S:
                return n
            batch_id = queues[owner].pop(0)
            try:
                step(ctx, batch_id, held, owner)
            except Exception:  # one batch's trouble is not the others': retried next round
                log.exception("batch step failed", extra={"batch_id": batch_id})
            store.served(owner, batch_id)
            n += 1
    return n


def step(ctx: WorkerContext, batch_id: str, held: Held = _always, owner: str = "") -> None:
    b = ctx.stores.batches.get(batch_id)
    if b is None:  # its record is gone: nothing left to do
        ctx.stores.batches.forget(owner, batch_id)
        return
    if b.status == VALIDATING:
        validate(ctx, b)
    elif b.status == IN_PROGRESS:
        if time.time() >= b.expires_at:
            if finalize_due(b):
                end_lines(ctx, b, EXPIRED)
                finalize(ctx, b, EXPIRED, (IN_PROGRESS,))
        elif b.errors is not None:  # its input was lost: it ends once no line is in flight
            if b.ended >= b.expanded:
                finalize(ctx, b, FAILED, (IN_PROGRESS,))
        elif b.total and b.expanded >= b.total and b.ended >= b.total:
            if ctx.stores.batches.move(
                b, (IN_PROGRESS,), FINALIZING, finalizing_at=int(time.time())
            ):
                finalize(ctx, b, COMPLETED, (FINALIZING,))
        else:
            expand(ctx, b, held)
    elif b.status == FINALIZING:  # a finalize that did not end (its worker was lost)
        finalize(ctx, b, COMPLETED, (FINALIZING,))
    elif b.status == CANCELLING and finalize_due(b):
        end_lines(ctx, b, CANCELLED)
        finalize(ctx, b, CANCELLED, (CANCELLING,))


def validate(ctx: WorkerContext, b: Batch) -> None:
    s = ctx.settings
    now = int(time.time())
    f = ctx.stores.files.get_any(b.input_file_id)
    if f is None or f.owner != b.owner:
        err = LineError(0, "invalid_file", f"The input file {b.input_file_id} no longer exists.")
        ctx.stores.batches.move(b, (VALIDATING,), FAILED, failed_at=now, errors=_errors([err]))
        return
    errors: list[LineError] = []
    seen: set[str] = set()
    total = 0
    budgeted = _budget(s, b.owner) is not None
    for raw in input_lines(ctx, b):
        if not raw.data.strip():
            continue
        got = parse_line(s, b.endpoint, raw.number, raw.data)
        if isinstance(got, Line) and budgeted and _reservation(s, got.chat) is None:
            got = LineError(raw.number, "invalid_value", _UNBOUNDED, "body.max_tokens")
        if isinstance(got, Line) and got.custom_id in seen:
            got = LineError(
                raw.number,
                "duplicate_custom_id",
                f"custom_id: {got.custom_id!r} is used by an earlier line.",
                "custom_id",
            )
        if isinstance(got, LineError):
            if len(errors) < s.batches.max_line_errors:
                errors.append(got)
            continue
        seen.add(got.custom_id)
        total += 1
    if not errors and not total:
        errors.append(LineError(0, "empty_file", "The input file holds no request lines."))
    if errors:
        ctx.stores.batches.move(b, (VALIDATING,), FAILED, failed_at=now, errors=_errors(errors))
        log.info("batch failed validation", extra={"batch_id": b.id, "errors": len(errors)})
        return
    ctx.stores.batches.move(b, (VALIDATING,), IN_PROGRESS, in_progress_at=now, total=total)
    log.info("batch validated", extra={"batch_id": b.id, "lines": total})


def _errors(errors: list[LineError]) -> dict[str, Any]:
    return {"object": "list", "data": [e.to_public() for e in errors]}


def expand(ctx: WorkerContext, b: Batch, held: Held) -> None:
    """Take the batch's next lines (``batch_expand.lua``), keeping at most
    ``batches.expand_ahead`` unfinished, within the room the batch priority and the key's
    backlog have (module docstring), until the step's time is up or a line must wait."""
    s, store = ctx.settings, ctx.stores.batches
    started = time.monotonic()
    budget = _budget(s, b.owner)
    max_queued = int(s.queue.max_depth * BATCH_DEPTH_SHARE)
    max_backlog = s.batches.expand_ahead
    while held() and time.monotonic() - started < STEP_BUDGET_S:
        if b.expanded >= b.total:
            break
        queued, backlog = store.room(b.owner)
        room = min(
            s.batches.expand_ahead - (b.expanded - b.ended),
            EXPAND_STEP,
            max_queued - queued,
            max_backlog - backlog,
        )
        if room <= 0:
            break
        offset, number = parse_cursor(b.cursor)
        lines: list[ExpandLine] = []
        end = offset
        try:
            for raw in input_lines(ctx, b, offset, number):
                end, number = raw.end, raw.number
                if raw.data.strip():
                    lines.append(_expand_line(ctx, b, raw, budget))
                    if len(lines) >= room:
                        break
        except Exception:
            if not _input_lost(ctx, b, read_failed=True):
                raise  # the store failed to answer, the file is there: tried again next round
            return
        if not lines:  # the file ends before its last line: deleted, or its content is gone
            _input_lost(ctx, b)
            return
        done = store.expand(
            b, lines, f"{end}:{number}", _ttl(ctx, b), max_queued, max_backlog, budget
        )
        if done.taken:
            fair_release.release(ctx, "batch", b.owner)
        if done.why != "ok":  # no room, a line waits for budget, or another step moved on
            break
        fresh = store.get(b.id)
        if fresh is None or fresh.status != IN_PROGRESS:
            break
        b = fresh


def _input_lost(ctx: WorkerContext, b: Batch, read_failed: bool = False) -> bool:
    """The batch's input file gave no line although some are still to run (``read_failed``:
    reading it raised): no more lines start, and the batch ends failed, naming why, once those
    in flight have ended. False when reading raised but the file is there (its store did not
    answer: tried again next round)."""
    f = ctx.stores.files.get_any(b.input_file_id)
    if f is None or f.owner != b.owner:
        code, why = "input_file_deleted", "was deleted"
    elif read_failed:
        return False
    else:
        code, why = "input_file_unreadable", "ended early"
    message = (
        f"The input file {b.input_file_id} {why} while the batch ran: {b.expanded} of its "
        f"{b.total} requests had started, and no more could be read. The results of those "
        "are in the output and error files."
    )
    error = {"code": code, "message": message, "param": "input_file_id", "line": None}
    errors = {"object": "list", "data": [error]}
    if ctx.stores.batches.move(b, (IN_PROGRESS,), IN_PROGRESS, errors=errors):
        log.warning("batch input lost", extra={"batch_id": b.id, "code": code})
    return True


def _budget(s: Settings, owner: str) -> tuple[int, str] | None:
    """The key's budget (micro-USD, period), or None."""
    key = s.key(owner)
    if key is None or key.budget is None:
        return None
    return key.budget.micro, key.budget.period


def _reservation(s: Settings, chat: ChatRequest) -> int | None:
    """What a line reserves of its key's budget, as the API reserves for a request (None: not
    bounded, so a key with a budget cannot run it)."""
    return cost_bound(chat.body, s.models.get(chat.model, ()))


_UNBOUNDED = (
    "This API key has a budget, so each request's cost must be bounded: set max_tokens (the "
    "model's maximum output is not known; an operator can set models.<name>[].max_output_tokens)."
)
_PERIOD = {"day": "a day (UTC)", "month": "a month (UTC)", "total": "in all"}


def _expand_line(
    ctx: WorkerContext, b: Batch, raw: RawLine, budget: tuple[int, str] | None
) -> ExpandLine:
    """A line as ``batch_expand.lua`` takes it: a job (with its reservation, and the answer
    if the budget can never hold it), or an answer at once (no longer valid)."""
    s = ctx.settings
    job_id = line_job_id(b.id, raw.number)
    cursor = f"{raw.end}:{raw.number}"
    custom_id = custom_id_of(raw.data) or ""
    got = parse_line(s, b.endpoint, raw.number, raw.data)
    if isinstance(got, LineError):  # valid when the batch was validated: the config changed
        err = InvalidRequest(got.message, code=got.code, param=got.param)
        return ExpandLine(job_id, None, 0, cursor, _answer(job_id, custom_id, err))
    hold, refusal = 0, b""
    if budget is not None:
        bound = _reservation(s, got.chat)
        if bound is None:
            err = InvalidRequest(_UNBOUNDED, param="max_tokens")
            return ExpandLine(job_id, None, 0, cursor, _answer(job_id, custom_id, err))
        micro, period = budget
        hold = bound
        refusal = _answer(
            job_id,
            custom_id,
            BudgetExceeded(
                f"Budget exceeded: the budget of this API key is ${micro / 1e6:g} "
                f"{_PERIOD.get(period, period)}, and too little of it is left for this "
                f"request, which may cost up to ${bound / 1e6:.6g}."
            ),
        )
    return ExpandLine(job_id, _line_job(ctx, b, raw.number, got, raw.data), hold, cursor, refusal)


def _answer(job_id: str, custom_id: str, err: GatewayError) -> bytes:
    """The output line of a request answered without running: the error the API would have
    answered it with, in OpenAI's batch output format (as ``batch_note.lua`` writes one)."""
    return orjson.dumps(
        {
            "id": batch_request_id(job_id),
            "custom_id": custom_id,
            "response": {
                "status_code": err.status,
                "request_id": job_id,
                "body": {"error": err.to_error_object()},
            },
            "error": None,
        }
    )


def _ttl(ctx: WorkerContext, b: Batch) -> int:
    """A line job's record outlives its batch's window, then the results' keeping time."""
    return int(max(0, b.expires_at - time.time()) + ctx.settings.queue.result_ttl_s)


def _line_job(ctx: WorkerContext, b: Batch, number: int, line: Line, data: bytes) -> dict[str, str]:
    """A line's job record (the fields ``create.lua`` would write), queued at batch priority
    with its batch's window as its deadline."""
    s, k, now = ctx.settings, ctx.keys, time.time()
    job_id = line_job_id(b.id, number)
    fields: dict[str, Any] = {
        "id": job_id,
        "owner": b.owner,
        "status": QUEUED,
        "priority": "batch",
        "kind": "chat",  # a batch line is a chat completion request
        "door": "batches",
        "created_at": now,
        "deadline_at": float(b.expires_at),
        "config_version": s.version,
        "metadata": {},
        "attempts": [],
        "deliveries": 0,
        "degraded": False,
        "exhausted": [],
        "tokens_estimate": 0,
        "request_id": job_id,
        "notify": k.done_channel_of(NO_LISTENER),
        "fair": fair_hint(k, "batch", b.owner),
        "batch": f"{k.batch(b.id)}\n{k.batch_results(b.id)}",
        "custom_id": custom_id_of(data) or "",
        "model": line.chat.model,
        "request": line.chat.body,
        "options": {**line.chat.ext, WORKER_LOOKUP: True},
        "breaker_hint": breaker_hint(
            s, k, line.chat.model, line.chat.ext.get("preferred_provider")
        ),
    }
    return encode_fields(fields)


def end_lines(ctx: WorkerContext, b: Batch, status: str) -> int:
    """End every line job of the batch not yet terminal (queued, held, running: a running
    call's late result is discarded by finish.lua); returns how many. A line's job is named by
    its line's number in the file, blank lines counted, so every line up to the cursor's is
    looked at (a blank line, or a line answered at once, has no job)."""
    k = ctx.keys
    err = GatewayError(
        "The batch's completion window expired."
        if status == EXPIRED
        else "The batch was cancelled.",
        code="batch_expired" if status == EXPIRED else "batch_cancelled",
    )
    ended, page = 0, 1000
    _, read = parse_cursor(b.cursor)
    for start in range(1, read + 1, page):
        ids = [line_job_id(b.id, n) for n in range(start, min(start + page, read + 1))]
        pipe = ctx.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(k.job(job_id), "status")
        for job_id, st in zip(ids, pipe.execute(), strict=True):
            if st and st not in TERMINAL:
                outcome, _ = ctx.stores.jobs.terminate(job_id, status, err)
                ended += outcome == "ok"
    return ended

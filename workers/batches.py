"""The batch duty: every running batch is stepped here, inside the worker processes under a
fenced duty lease (``workers.duties``; no singleton). Every step is a compare-and-set in
Redis (``shared/batch/batch_store.py``), so a worker killed mid-step, or a lease that changed hands
mid-step, loses no line and answers none twice: the next step starts from what Redis says.

- ``validating``: every line is checked as the chat route checks a request; any invalid
  line fails the batch with each line's number (OpenAI's behaviour), else it runs.
- ``in_progress``: lines become jobs a step at a time, at most ``batches.expand_ahead``
  unfinished at once (so Redis holds a bounded number of line jobs, however long the file),
  held in the owner's fair-share backlog at batch priority and released by shared/state/fair.py.
  Each line job writes its output line as it ends (``batch_note.lua``).
- Past its window the batch's unfinished lines end ``expired``; a cancel ends them
  ``cancelled``; then the output and error files are written and the batch ends.
"""

from __future__ import annotations

import io
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
    line_job_id,
)
from shared.batch.input_lines import lines_from, parse_cursor
from shared.errors import GatewayError
from shared.routing import breaker_hint
from shared.state.job_record import QUEUED, TERMINAL, encode_fields, fair_hint
from workers import fair_release
from workers.batch_parse import Line, LineError, custom_id_of, parse_line
from workers.context import WorkerContext
from workers.runner import WORKER_LOOKUP

log = logging.getLogger(__name__)
BATCH_STEP_INTERVAL_S = 0.25
EXPAND_STEP = 500  # lines per expansion step (one Lua call)
STEP_BUDGET_S = 0.5  # one batch's expansion yields to the next batch after this
NO_LISTENER = "batch-lines"  # line jobs' notices go to a channel no API process waits on
Held = Callable[[], bool]


def _always() -> bool:
    return True


def step_batches(ctx: WorkerContext, held: Held = _always) -> int:
    """Step every batch not yet ended; returns how many were stepped."""
    n = 0
    for batch_id in ctx.stores.batches.active():
        if not held():
            break
        try:
            step(ctx, batch_id, held)
        except Exception:  # one batch's trouble is not the others': retried next interval
            log.exception("batch step failed", extra={"batch_id": batch_id})
        n += 1
    return n


def step(ctx: WorkerContext, batch_id: str, held: Held = _always) -> None:
    b = ctx.stores.batches.get(batch_id)
    if b is None:  # its record expired: nothing left to do
        ctx.redis.zrem(ctx.keys.batches_active, batch_id)
        return
    if b.status == VALIDATING:
        validate(ctx, b)
    elif b.status == IN_PROGRESS:
        if time.time() >= b.expires_at:
            end_lines(ctx, b, EXPIRED)
            finalize(ctx, b, EXPIRED, (IN_PROGRESS,))
        elif b.total and b.expanded >= b.total and b.ended >= b.total:
            if ctx.stores.batches.move(
                b.id, (IN_PROGRESS,), FINALIZING, finalizing_at=int(time.time())
            ):
                finalize(ctx, b, COMPLETED, (FINALIZING,))
        else:
            expand(ctx, b, held)
    elif b.status == FINALIZING:  # a finalize that did not end (its worker was lost)
        finalize(ctx, b, COMPLETED, (FINALIZING,))
    elif b.status == CANCELLING:
        end_lines(ctx, b, CANCELLED)
        finalize(ctx, b, CANCELLED, (CANCELLING,))


def _lines(ctx: WorkerContext, b: Batch, offset: int = 0, number: int = 0) -> Any:
    return lines_from(ctx.stores.files.content(b.input_file_id, offset), offset, number)


def validate(ctx: WorkerContext, b: Batch) -> None:
    s = ctx.settings
    now = int(time.time())
    f = ctx.stores.files.get_any(b.input_file_id)
    if f is None or f.owner != b.owner:
        err = LineError(0, "invalid_file", f"The input file {b.input_file_id} no longer exists.")
        ctx.stores.batches.move(b.id, (VALIDATING,), FAILED, failed_at=now, errors=_errors([err]))
        return
    errors: list[LineError] = []
    seen: set[str] = set()
    total = 0
    for raw in _lines(ctx, b):
        if not raw.data.strip():
            continue
        got = parse_line(s, b.endpoint, raw.number, raw.data)
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
        ctx.stores.batches.move(b.id, (VALIDATING,), FAILED, failed_at=now, errors=_errors(errors))
        log.info("batch failed validation", extra={"batch_id": b.id, "errors": len(errors)})
        return
    ctx.stores.batches.move(b.id, (VALIDATING,), IN_PROGRESS, in_progress_at=now, total=total)
    log.info("batch validated", extra={"batch_id": b.id, "lines": total})


def _errors(errors: list[LineError]) -> dict[str, Any]:
    return {"object": "list", "data": [e.to_public() for e in errors]}


def expand(ctx: WorkerContext, b: Batch, held: Held) -> None:
    """Make the batch's next lines jobs, keeping at most ``batches.expand_ahead`` unfinished."""
    s = ctx.settings
    started = time.monotonic()
    while held() and time.monotonic() - started < STEP_BUDGET_S:
        room = min(s.batches.expand_ahead - (b.expanded - b.ended), EXPAND_STEP)
        if room <= 0 or b.expanded >= b.total:
            break
        offset, number = parse_cursor(b.cursor)
        jobs: list[dict[str, str]] = []
        end = offset
        for raw in _lines(ctx, b, offset, number):
            end, number = raw.end, raw.number
            if not raw.data.strip():
                continue
            got = parse_line(s, b.endpoint, raw.number, raw.data)
            # Validated already: an error now means the config changed since.
            line = got if isinstance(got, Line) else None
            jobs.append(_line_job(ctx, b, raw.number, line, raw.data))
            if len(jobs) >= room:
                break
        done = ctx.stores.batches.expand(
            b, jobs, f"{end}:{number}", b.expanded + len(jobs), _ttl(ctx, b)
        )
        if done != 1:
            break
        fair_release.release(ctx, "batch", b.owner)
        fresh = ctx.stores.batches.get(b.id)
        if fresh is None or fresh.status != IN_PROGRESS:
            break
        b = fresh


def _ttl(ctx: WorkerContext, b: Batch) -> int:
    """A line job's record outlives its batch's window, then the results' keeping time."""
    return int(max(0, b.expires_at - time.time()) + ctx.settings.queue.result_ttl_s)


def _line_job(
    ctx: WorkerContext, b: Batch, number: int, line: Line | None, data: bytes
) -> dict[str, str]:
    """A line's job record (the fields ``create.lua`` would write), queued at batch priority
    with its batch's window as its deadline."""
    s, k, now = ctx.settings, ctx.keys, time.time()
    job_id = line_job_id(b.id, number)
    fields: dict[str, Any] = {
        "id": job_id,
        "owner": b.owner,
        "status": QUEUED,
        "priority": "batch",
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
    }
    if line is None:  # no longer valid: the job ends failed at once, naming why
        fields.update(model="", request={}, options={})
        fields["invalid"] = "1"
    else:
        chat = line.chat
        fields.update(
            model=chat.model,
            request=chat.body,
            options={**chat.ext, WORKER_LOOKUP: True},
            breaker_hint=breaker_hint(s, k, chat.model, chat.ext.get("preferred_provider")),
        )
    return encode_fields(fields)


def end_lines(ctx: WorkerContext, b: Batch, status: str) -> int:
    """End every line job of the batch not yet terminal (queued, held, running: a running
    call's late result is discarded by finish.lua); returns how many."""
    k = ctx.keys
    err = GatewayError(
        "The batch's completion window expired."
        if status == EXPIRED
        else "The batch was cancelled.",
        code="batch_expired" if status == EXPIRED else "batch_cancelled",
    )
    ended, page = 0, 1000
    for start in range(1, b.expanded + 1, page):
        ids = [line_job_id(b.id, n) for n in range(start, min(start + page, b.expanded + 1))]
        pipe = ctx.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(k.job(job_id), "status")
        for job_id, st in zip(ids, pipe.execute(), strict=True):
            if st and st not in TERMINAL:
                outcome, _ = ctx.stores.jobs.terminate(job_id, status, err)
                ended += outcome == "ok"
    return ended


def finalize(ctx: WorkerContext, b: Batch, ending: str, from_: tuple[str, ...]) -> None:
    """Write the output and error files from the lines answered (and, for a batch that did
    not complete, an error line for each request that never ran), then end the batch."""
    out: list[bytes] = []
    errs: list[bytes] = []
    answered: set[str] = set()
    for raw in ctx.stores.batches.results(b.id):
        line = orjson.loads(raw)
        answered.add(line.get("custom_id"))
        ok = line.get("error") is None and (line.get("response") or {}).get("status_code") == 200
        (out if ok else errs).append(raw)
    if ending != COMPLETED:
        code = f"batch_{ending}"
        message = (
            "This request could not be executed before the completion window expired."
            if ending == EXPIRED
            else "The batch was cancelled before this request ran."
        )
        for raw_line in _lines(ctx, b):
            if not raw_line.data.strip():
                continue
            custom_id = custom_id_of(raw_line.data)
            if custom_id is None or custom_id in answered:
                continue
            answered.add(custom_id)
            job_id = line_job_id(b.id, raw_line.number)
            errs.append(
                orjson.dumps(
                    {
                        "id": "batch_req_" + job_id.removeprefix("job_"),
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": code, "message": message},
                    }
                )
            )
    output_id = _write(ctx, b, out, "output")
    error_id = _write(ctx, b, errs, "error")
    now = int(time.time())
    stamps = {f"{ending}_at": now}
    if ending != COMPLETED and b.finalizing_at is None:
        stamps["finalizing_at"] = now
    moved = ctx.stores.batches.move(
        b.id, from_, ending, output_file_id=output_id or "", error_file_id=error_id or "", **stamps
    )
    if not moved:  # another step ended it first: its files stand, ours go
        for file_id in (output_id, error_id):
            if file_id:
                ctx.stores.files.delete(b.owner, file_id)
        return
    log.info(
        "batch ended",
        extra={"batch_id": b.id, "status": ending, "output": len(out), "errors": len(errs)},
    )


def _write(ctx: WorkerContext, b: Batch, lines: list[bytes], kind: str) -> str | None:
    if not lines:
        return None
    data = b"\n".join(lines) + b"\n"
    stored = ctx.stores.files.put(
        b.owner, f"{b.id}_{kind}.jsonl", "batch_output", io.BytesIO(data), len(data)
    )
    return stored.id

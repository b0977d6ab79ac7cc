"""A batch's end (``workers/batches.py`` decides when): its output and error files written from
the lines answered (and, for a batch that did not complete, one error line for each request
that never ran), then its status moved.

The files are written a chunk at a time as their lines are read (``LineReader``): the results
are read once to size each file, which reserves its room within the key's
``files.max_bytes_per_key`` and the store's bound, then again as the store writes it, so a
worker holds a few MiB however large the output. Files that do not fit are tried again after a
backoff, ``FINALIZE_ATTEMPTS`` times at most; then the batch ends ``failed``, naming why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from shared.batch.batch_store import (
    CANCELLED,
    COMPLETED,
    EXPIRED,
    FAILED,
    Batch,
    batch_request_id,
    line_job_id,
)
from shared.batch.file_content import ContentChanged, LineReader
from shared.batch.file_store import KeyFull, StoreFull
from shared.batch.input_lines import lines_from
from shared.batch.lines import custom_id_of
from workers.context import WorkerContext

log = logging.getLogger(__name__)
FINALIZE_ATTEMPTS = 8  # finalizes whose files did not fit, before the batch ends failed
FINALIZE_BACKOFF_S = 2.0  # before the next finalize, doubling each time (about 3 min in all)
FINALIZE_BACKOFF_MAX_S = 60.0


def finalize_due(b: Batch) -> bool:
    """False while a finalize whose files did not fit waits for its next attempt."""
    return time.time() >= b.finalize_retry_at


def input_lines(ctx: WorkerContext, b: Batch, offset: int = 0, number: int = 0) -> Any:
    """The batch's input lines from byte ``offset`` (line ``number`` there), read a chunk at a
    time."""
    return lines_from(ctx.stores.files.content(b.input_file_id, offset), offset, number)


def finalize(ctx: WorkerContext, b: Batch, ending: str, from_: tuple[str, ...]) -> None:
    """Write the output and error files from the lines answered (and, for a batch that did
    not complete, an error line for each request that never ran), then end the batch. Files
    that do not fit (the key's ``files.max_bytes_per_key``, the store's bound) are tried again
    later; after ``FINALIZE_ATTEMPTS`` the batch ends failed, naming why."""
    if not finalize_due(b):
        return
    try:
        output_id = _write(ctx, b, "output", lambda: _output_lines(ctx, b))
        try:
            error_id = _write(ctx, b, "error", lambda: _error_lines(ctx, b, ending))
        except BaseException:
            if output_id:
                ctx.stores.files.delete(b.owner, output_id)
            raise
    except (StoreFull, ContentChanged) as exc:
        _not_stored(ctx, b, from_, exc)
        return
    now = int(time.time())
    stamps = {f"{ending}_at": now}
    if ending != COMPLETED and b.finalizing_at is None:
        stamps["finalizing_at"] = now
    moved = ctx.stores.batches.move(
        b, from_, ending, output_file_id=output_id or "", error_file_id=error_id or "", **stamps
    )
    if not moved:  # another step ended it first: its files stand, ours go
        for file_id in (output_id, error_id):
            if file_id:
                ctx.stores.files.delete(b.owner, file_id)
        return
    log.info("batch ended", extra={"batch_id": b.id, "status": ending})


def _ok(raw: bytes) -> bool:
    line = orjson.loads(raw)
    return line.get("error") is None and (line.get("response") or {}).get("status_code") == 200


def _output_lines(ctx: WorkerContext, b: Batch) -> Iterator[bytes]:
    return (raw for raw in ctx.stores.batches.results(b.id) if _ok(raw))


def _error_lines(ctx: WorkerContext, b: Batch, ending: str) -> Iterator[bytes]:
    """The lines answered with an error; for a batch that did not complete, then one line for
    each request that never ran (read from the input file, if it is still there)."""
    answered: set[str] = set()
    for raw in ctx.stores.batches.results(b.id):
        if ending != COMPLETED:
            answered.add(orjson.loads(raw).get("custom_id"))
        if not _ok(raw):
            yield raw
    if ending == COMPLETED or ctx.stores.files.get_any(b.input_file_id) is None:
        return
    code = f"batch_{ending}"
    message = {
        EXPIRED: "This request could not be executed before the completion window expired.",
        CANCELLED: "The batch was cancelled before this request ran.",
    }.get(ending, "The batch failed before this request ran.")
    for raw_line in input_lines(ctx, b):
        if not raw_line.data.strip():
            continue
        custom_id = custom_id_of(raw_line.data)
        if custom_id is None or custom_id in answered:
            continue
        answered.add(custom_id)
        job_id = line_job_id(b.id, raw_line.number)
        yield orjson.dumps(
            {
                "id": batch_request_id(job_id),
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": message},
            }
        )


def _write(
    ctx: WorkerContext, b: Batch, kind: str, lines: Callable[[], Iterator[bytes]]
) -> str | None:
    """A file of ``lines`` (each followed by a newline), or None when there are none: read
    once to size it (the reservation), then again as the store writes it, a chunk at a time
    (never held whole)."""
    size = sum(len(line) + 1 for line in lines())
    if not size:
        return None
    name = f"{b.id}_{kind}.jsonl"
    stored = ctx.stores.files.put(b.owner, name, "batch_output", LineReader(lines(), size), size)
    return stored.id


def _not_stored(ctx: WorkerContext, b: Batch, from_: tuple[str, ...], exc: Exception) -> None:
    """The files did not fit (or their lines changed while written): try again after a
    backoff, or after ``FINALIZE_ATTEMPTS`` end the batch failed, naming why."""
    attempts = b.finalize_attempts + 1
    if isinstance(exc, KeyFull):
        why = (
            f"this API key's files hold {exc.used} bytes, and files.max_bytes_per_key is "
            f"{exc.bound}: delete files to make room"
        )
    elif isinstance(exc, StoreFull):
        why = f"the file store is full ({exc.used} of {exc.bound} bytes in use)"
    else:
        why = str(exc)
    now = time.time()
    log.warning(
        "batch files not stored",
        extra={"batch_id": b.id, "attempt": attempts, "reason": why},
    )
    if attempts < FINALIZE_ATTEMPTS:
        wait = min(FINALIZE_BACKOFF_S * 2 ** (attempts - 1), FINALIZE_BACKOFF_MAX_S)
        ctx.stores.batches.move(
            b, from_, from_[0], finalize_attempts=attempts, finalize_retry_at=now + wait
        )
        return
    error = {
        "code": "output_not_stored",
        "message": f"The batch's output and error files could not be stored after {attempts} "
        f"attempts: {why}.",
        "param": None,
        "line": None,
    }
    stamps = {"failed_at": int(now)}
    if b.finalizing_at is None:
        stamps["finalizing_at"] = int(now)
    ctx.stores.batches.move(
        b,
        from_,
        FAILED,
        finalize_attempts=attempts,
        errors={"object": "list", "data": [error]},
        **stamps,
    )

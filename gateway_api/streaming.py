"""The API's half of streaming: a job's Redis Stream relayed as Server-Sent Events.

Headers are sent only once the first chunk is there: until then the job may still be
retried, fall back, or fail, and a failure before any chunk answers with its proper HTTP
status (the openai client raises the matching exception). After that, the stream carries
the chunks in order, each with its entry id as the SSE ``id`` (for ``Last-Event-ID``), and
ends with ``data: [DONE]`` or an ``error`` event.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response

from gateway_api.errors import error_response
from gateway_api.responses import completion, gateway_headers, job_error
from gateway_api.services import Services
from shared.cache import Entry
from shared.chunks import from_completion, wants_usage
from shared.errors import GatewayError, GatewayTimeout, from_stored
from shared.jobs import CANCELLED, SUCCEEDED, Job

log = logging.getLogger(__name__)
BLOCK_MS = 500  # between checks of the job record while no entry comes
KEEPALIVE_S = 15.0  # an SSE comment when nothing was sent this long (proxies close idle streams)
START = "0-0"
_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
Entries = list[tuple[str, dict[str, str]]]


def valid_event_id(raw: str) -> bool:
    return bool(_EVENT_ID.match(raw))


def sse(data: str, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {data}\n\n".encode()


def error_event(err: GatewayError, job_id: str, event_id: str | None = None) -> bytes:
    return sse(json.dumps(err.envelope(job_id), separators=(",", ":")), event_id)


def _read(services: Services, key: str, after: str, block_ms: int | None) -> Entries:
    res: Any = services.stream_redis.xread({key: after}, count=256, block=block_ms)
    return [(str(i), dict(f)) for i, f in res[0][1]] if res else []


@dataclass
class Opening:
    entries: Entries  # the first entries after the start point
    ended: Job | None  # the job, when it ended with no entry after the start point


def open_stream(services: Services, job: Job, after: str, wait_until: float) -> Opening:
    """Wait for the first entry after ``after``, or for the job to end without one."""
    key = services.keys.stream(job.id)
    while True:
        remaining = wait_until - time.time()
        if remaining <= 0:
            return Opening([], None)
        entries = _read(services, key, after, max(1, int(min(BLOCK_MS, remaining * 1000))))
        if entries:
            return Opening(entries, None)
        current = services.store.get(job.id) or job
        if current.terminal:
            # The worker writes its last entries just after it records the end.
            entries = _read(services, key, after, 100)
            return Opening(entries, None if entries else current)


def relay(services: Services, job: Job, entries: Entries) -> Iterator[bytes]:
    """The job's entries from the first batch on, until done or error."""
    key = services.keys.stream(job.id)
    last, quiet_since, finished = entries[-1][0] if entries else START, time.time(), False
    try:
        while True:
            for entry_id, fields in entries:
                last, kind, data = entry_id, fields.get("k"), fields.get("d", "null")
                if kind == "chunk":
                    yield sse(data, entry_id)
                elif kind == "done":
                    finished = True
                    yield sse("[DONE]", entry_id)
                    return
                else:
                    finished = True
                    stored = json.loads(data)
                    err = (
                        from_stored(stored)
                        if isinstance(stored, dict)
                        else GatewayError("The stream failed.", code="stream_failed", status=502)
                    )
                    yield error_event(err, job.id, entry_id)
                    return
            entries = _read(services, key, last, BLOCK_MS)
            if entries:
                quiet_since = time.time()
                continue
            current = services.store.get(job.id)
            if current is None or current.terminal:
                entries = _read(services, key, last, 100)
                if entries:
                    continue
                # Ended with no closing entry (cancelled; the worker lost after finishing).
                finished = True
                if current is not None and current.status == SUCCEEDED:
                    yield sse("[DONE]")
                else:
                    yield error_event(job_error(current) if current else _vanished(), job.id)
                return
            if time.time() - quiet_since >= KEEPALIVE_S:
                quiet_since = time.time()
                yield b": keep-alive\n\n"
    finally:
        if not finished:
            _client_left(services, job)


def _vanished() -> GatewayError:
    return GatewayError("The job record is gone (expired).", code="job_not_found", status=404)


def _client_left(services: Services, job: Job) -> None:
    """The client went away mid-stream: the job runs on (its result stays readable at
    /v1/jobs/{id}) unless ``streaming.cancel_on_disconnect``."""
    cancel = bool((services.settings.raw.get("streaming") or {}).get("cancel_on_disconnect"))
    log.info("stream client left", extra={"job_id": job.id, "cancel": cancel})
    if cancel:
        try:
            services.store.terminate(
                job.id, CANCELLED, GatewayError("The client disconnected.", code="cancelled")
            )
        except Exception:
            log.warning("could not cancel after a disconnect", extra={"job_id": job.id})


def replay(completion_body: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    """A finished answer as a stream (a cache hit, a fallback answer, an expired stream)."""
    for chunk in from_completion(completion_body, include_usage):
        yield sse(json.dumps(chunk, separators=(",", ":")))
    yield sse("[DONE]")


def event_stream(body: Iterable[bytes]) -> Response:
    resp = Response(body, mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return resp


def stream_response(services: Services, job: Job, after: str, wait_until: float) -> Response:
    """The SSE answer for ``job`` from ``after`` on (or its HTTP error, if it failed before
    sending anything)."""
    opening = open_stream(services, job, after, wait_until)
    if opening.entries:
        return gateway_headers(event_stream(relay(services, job, opening.entries)), job)
    ended = opening.ended
    if ended is None:
        err = GatewayTimeout(
            "No part of the answer arrived before the job's deadline; it may still finish: "
            f"poll /v1/jobs/{job.id}.",
            code="timeout",
        )
        return gateway_headers(error_response(err, job.id), job)
    if after != START and services.stream_redis.exists(services.keys.stream(job.id)):
        # Reattached past the last entry of a stream that has ended: only its end remains.
        tail = (
            [sse("[DONE]")]
            if ended.status == SUCCEEDED
            else [error_event(job_error(ended), job.id)]
        )
        return gateway_headers(event_stream(tail), ended)
    if ended.status == SUCCEEDED and ended.result is not None:
        body = replay(ended.result, wants_usage(ended.request))
        return gateway_headers(event_stream(body), ended)
    return completion(ended)


def stream_hit(entry: Entry, request: dict[str, Any]) -> Response:
    """A cache hit for a streamed request: the stored answer, as a stream."""
    resp = event_stream(replay(entry.result, wants_usage(request)))
    resp.headers["X-Gateway-Cache"] = "hit"
    if entry.provider:
        resp.headers["X-Gateway-Provider"] = entry.provider
    resp.headers["Age"] = str(int(entry.age_s))
    return resp

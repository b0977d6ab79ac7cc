"""The API's half of streaming: a job's Redis Stream relayed as Server-Sent Events.

Headers wait for the first chunk, but not forever. For up to ``streaming.keepalive_s`` the job
may still be retried, fall back, or fail, and a failure then answers with its proper HTTP
status (the openai client raises the matching exception). A first chunk that takes longer
(the job queued behind others, a retry's backoff, a reasoning model thinking for minutes)
must not let a proxy close the idle connection (60 s at AWS ALB and nginx): the answer is
then committed as ``200 text/event-stream`` and an SSE comment (``: keep-alive``) goes out
every ``keepalive_s`` until it comes. From that point a failure is an SSE ``error`` event
carrying the OpenAI error envelope (the openai client raises ``APIError`` with its message),
exactly like a failure after the first chunk; a success with no stream entries (a stale or
degraded fallback, a cache hit) is replayed as chunks.

After that, the stream carries the chunks in order, each with its entry id as the SSE ``id``
(for ``Last-Event-ID``), and ends with ``data: [DONE]`` or an ``error`` event. A Redis outage
mid-stream keeps the connection alive with the same comments and resumes where it stopped;
one that outlasts the job's deadline ends it with a ``gateway_unavailable`` error event.
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
from gateway_api.responses import (
    cache_hit_headers,
    completion,
    gateway_headers,
    job_error,
)
from gateway_api.services import Services
from shared.errors import (
    BACKEND_DOWN,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    NotFound,
    ProviderFailed,
    from_stored,
)
from shared.state.cache import Entry
from shared.state.job_record import CANCELLED, SUCCEEDED, Job
from shared.wire.capabilities import DEGRADED_HEADER
from shared.wire.chunks import from_completion, wants_usage

log = logging.getLogger(__name__)
BLOCK_MS = 500  # between checks of the job record while no entry comes
DOWN_RETRY_S = 0.5  # between attempts while Redis is unreachable
KEEPALIVE = b": keep-alive\n\n"
START = "0-0"
_EVENT_ID = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")  # ASCII: \d takes any script
_U64 = 2**64 - 1
Entries = list[tuple[str, dict[str, str]]]


def valid_event_id(raw: str) -> bool:
    """A Redis stream id: two unsigned 64-bit integers (a larger one is a 400, not a 500)."""
    match = _EVENT_ID.match(raw)
    return match is not None and all(int(part) <= _U64 for part in match.groups())


def sse(data: str, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {data}\n\n".encode()


def error_event(err: GatewayError, job_id: str, event_id: str | None = None) -> bytes:
    return sse(json.dumps(err.envelope(job_id), separators=(",", ":")), event_id)


def _read(services: Services, key: str, after: str, block_ms: int | None) -> Entries:
    res: Any = services.stream_redis.xread({key: after}, count=256, block=block_ms)
    return [(str(i), dict(f)) for i, f in res[0][1]] if res else []


class _Down:
    """Redis did not answer: the caller waits and tries again."""


DOWN = _Down()


def _poll(services: Services, job: Job, after: str, block_ms: int) -> Entries | Job | _Down:
    """The entries after ``after`` (waiting up to ``block_ms``); if none, the job as it is now
    when it has ended (its last entries read once more); DOWN while Redis is away. Each poll
    reads the job's status; the rest of it (no request) is read once, when it has ended."""
    key = services.keys.stream(job.id)
    jobs = services.stores.jobs
    try:
        entries = _read(services, key, after, max(1, block_ms))
        if entries:
            return entries
        current = jobs.poll(job.id)
        if current is None or current.terminal:
            # The worker writes its last entries just after it records the end.
            tail = _read(services, key, after, 100)
            if tail:
                return tail
            ended = jobs.get_public(job.id) if current is not None else None
            return ended or job
        return []
    except BACKEND_DOWN:
        time.sleep(DOWN_RETRY_S)
        return DOWN


@dataclass
class Opening:
    entries: Entries  # the first entries after the start point
    ended: Job | None  # the job, when it ended with no entry after the start point
    down: bool = False  # Redis was unreachable when the wait ran out


def open_stream(services: Services, job: Job, after: str, wait_until: float) -> Opening:
    """Wait until ``wait_until`` for the first entry after ``after``, or for the job to end
    without one."""
    down, first = False, True
    while True:
        remaining = wait_until - time.time()
        if remaining <= 0 and not first:  # looked at least once: a job that ended is seen
            return Opening([], None, down)
        first = False
        got = _poll(services, job, after, int(min(BLOCK_MS, max(0.0, remaining) * 1000)))
        down = got is DOWN
        if isinstance(got, Job):
            return Opening([], got if got.terminal else None)
        if isinstance(got, list) and got:
            return Opening(got, None)


def relay(
    services: Services, job: Job, entries: Entries, wait_until: float, after: str = START
) -> Iterator[bytes]:
    """The job's entries from the first batch on (waiting for it if empty), until done or
    error, with a keep-alive comment whenever nothing was sent for ``keepalive_s``."""
    last, quiet_since, finished = entries[-1][0] if entries else after, time.time(), False
    keepalive_s = services.settings.streaming.keepalive_s
    if not entries:
        yield KEEPALIVE  # committed to a 200: the headers and a first sign of life go now
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
                    failure = (
                        from_stored(stored)
                        if isinstance(stored, dict)
                        else ProviderFailed("The stream failed.", code="stream_failed")
                    )
                    yield error_event(failure, job.id, entry_id)
                    return
            got = _poll(services, job, last, BLOCK_MS)
            if isinstance(got, list):
                entries = got
                if entries:
                    quiet_since = time.time()
                    continue
            elif isinstance(got, Job):
                finished = True
                yield from _ended_without_entries(services, got, job, last)
                return
            if time.time() >= wait_until:
                finished = True
                err: GatewayError = (
                    GatewayUnavailable(job_id=job.id)
                    if got is DOWN
                    else GatewayTimeout(
                        "No more of the answer arrived before the job's deadline.",
                        code="timeout",
                    )
                )
                yield error_event(err, job.id)
                return
            if time.time() - quiet_since >= keepalive_s:
                quiet_since = time.time()
                yield KEEPALIVE
    finally:
        if not finished:
            _client_left(services, job)


def _ended_without_entries(
    services: Services, current: Job, job: Job, last: str
) -> Iterator[bytes]:
    """A job that ended with no closing entry after ``last``."""
    if current.status == SUCCEEDED and current.result is not None and last == START:
        yield from replay(current.result, _wants_usage(services, job))
    elif current.status == SUCCEEDED:
        yield sse("[DONE]")  # cancelled after its chunks, or a worker lost after finishing
    else:
        yield error_event(job_error(current), job.id)


def _wants_usage(services: Services, job: Job) -> bool:
    """Did the job's request ask for the usage chunk? A stored answer replayed as a stream
    is the one answer that depends on the request: it is read then, if ``job`` came without."""
    request: dict[str, Any] | None = job.request
    if request is None:
        with_request = services.stores.jobs.get_fields(job.id, ("id", "request"))
        request = with_request.request if with_request is not None else None
    return wants_usage(request)


def _vanished() -> GatewayError:
    return NotFound("The job record is gone (expired).", code="job_not_found")


def _client_left(services: Services, job: Job) -> None:
    """The client went away mid-stream: the job runs on (its result stays readable at
    /v1/jobs/{id}) unless ``streaming.cancel_on_disconnect``."""
    cancel = services.settings.streaming.cancel_on_disconnect
    log.info("stream client left", extra={"job_id": job.id, "cancel": cancel})
    if cancel:
        try:
            services.stores.jobs.terminate(
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
    """The SSE answer for ``job`` from ``after`` on: its HTTP error if it fails within the
    first ``keepalive_s``, else a stream (kept alive until the first chunk comes)."""
    window = min(wait_until, time.time() + services.settings.streaming.keepalive_s)
    opening = open_stream(services, job, after, window)
    if opening.entries:
        resp = event_stream(relay(services, job, opening.entries, wait_until))
        degraded = opening.entries[0][1].get("p") if after == START else None
        if degraded:  # the worker marks the answer's first chunk (workers/stream_writer.py)
            resp.headers[DEGRADED_HEADER] = degraded
        return gateway_headers(resp, job)
    ended = opening.ended
    if ended is None:
        if time.time() < wait_until:  # still waiting: commit, and keep the line alive
            return gateway_headers(event_stream(relay(services, job, [], wait_until, after)), job)
        if opening.down:
            raise GatewayUnavailable(job_id=job.id)
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
        body = replay(ended.result, _wants_usage(services, job))
        return gateway_headers(event_stream(body), ended)
    if ended.slimmed and ended.status == SUCCEEDED:
        # A synchronous job's answer is kept queue.sync_result_ttl_s (its client had it).
        gone = NotFound(
            "This job's answer is no longer kept (queue.sync_result_ttl_s); its record is "
            f"at /v1/jobs/{job.id}.",
            code="result_expired",
        )
        return gateway_headers(error_response(gone, job.id), ended)
    return completion(ended)


def stream_hit(entry: Entry, request: dict[str, Any]) -> Response:
    """A cache hit for a streamed request: the stored answer, as a stream."""
    return cache_hit_headers(event_stream(replay(entry.result, wants_usage(request))), entry)

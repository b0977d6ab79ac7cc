"""The completion notice: what ``finish.lua`` publishes when a job becomes terminal.

``job_id`` alone wakes the job's waiters, who then read the record. A notice may also carry
the outcome a synchronous request answers with (status, provider, cache, degraded, error and
the result as stored), so the API process holding that request answers at once, without
reading the record back: a round trip and a decode fewer on every sync request. Every API
process receives every notice, so the result rides along only while it is small
(``MAX_RESULT_BYTES``); a larger one leaves the waiter to read the record.

Format: ``job_id`` + "\\n" + JSON head + "\\n" + the result's JSON text (or nothing).
"""

from __future__ import annotations

from typing import Any

from shared.wire import fastjson

MAX_RESULT_BYTES = 8192
_HEAD = (
    "provider",
    "cache",
    "degraded",
    "degraded_params",
    "error",
    "cost_micro",
    "cost_unknown",
)


def encode(job_id: str, status: str, encoded: dict[str, str]) -> str:
    """The notice for ``job_id`` from its final fields as stored (``jobs._encode``)."""
    result = encoded.get("result") or ""
    if len(result) > MAX_RESULT_BYTES:
        return job_id
    head: dict[str, Any] = {"status": status}
    for name in _HEAD:
        if encoded.get(name):
            head[name] = encoded[name]
    return f"{job_id}\n{fastjson.dumps_str(head)}\n{result}"


def job_id_of(message: str) -> str:
    return message.partition("\n")[0]


def outcome_of(message: str) -> dict[str, Any] | None:
    """(The job's outcome fields as stored, with "result" as JSON text), or None when the
    notice carries only the id."""
    _, sep, rest = message.partition("\n")
    if not sep:
        return None
    head_text, _, result = rest.partition("\n")
    head: dict[str, Any] = fastjson.loads(head_text)
    if result:
        head["result"] = result
    return head

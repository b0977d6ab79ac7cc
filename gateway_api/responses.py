"""Turning a job into HTTP answers."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from gateway_api.errors import error_response
from shared.errors import Conflict, GatewayError, GatewayTimeout, from_stored
from shared.spend.budget import usd_text
from shared.state.cache import Entry
from shared.state.job_record import CANCELLED, EXPIRED, SUCCEEDED, Job
from shared.wire import openai_shape
from shared.wire.capabilities import DEGRADED_HEADER

COST_HEADER = "X-Gateway-Cost-USD"


def gateway_headers(resp: Response, job: Job) -> Response:
    resp.headers["X-Gateway-Job-Id"] = job.id
    if job.provider:
        resp.headers["X-Gateway-Provider"] = job.provider
    resp.headers["X-Gateway-Cache"] = job.cache or "miss"
    if job.degraded:
        resp.headers["X-Gateway-Degraded"] = "true"
    if job.degraded_params:  # fields its provider served in a lesser form
        resp.headers[DEGRADED_HEADER] = job.degraded_params
    if job.terminal:  # what the job's provider calls billed; 0 for cache hits and fallbacks
        cost = job.cost_usd
        resp.headers[COST_HEADER] = "unknown" if cost is None else usd_text(job.cost_micro)
    return resp


def cache_hit_headers(resp: Response, entry: Entry) -> Response:
    """The headers of an answer from the cache (no job was made), streamed or not."""
    resp.headers["X-Gateway-Cache"] = "hit"
    resp.headers[COST_HEADER] = "0"  # answered from the cache: nothing billed
    if entry.provider:
        resp.headers["X-Gateway-Provider"] = entry.provider
    resp.headers["Age"] = str(int(entry.age_s))
    return resp


def cached_completion(entry: Entry) -> Response:
    """The answer to a request served from the cache on the spot (no job was made)."""
    return cache_hit_headers(jsonify(openai_shape.completion(entry.result)), entry)


def accepted(job: Job) -> Response:
    resp = jsonify(job.to_public())
    resp.status_code = 202
    resp.headers["Location"] = f"/v1/jobs/{job.id}"
    return gateway_headers(resp, job)


def job_error(job: Job) -> GatewayError:
    if job.error:
        err = from_stored(job.error)
    elif job.status == EXPIRED:
        err = GatewayTimeout("The job's deadline passed.", code="deadline_exceeded")
    elif job.status == CANCELLED:
        err = Conflict("The job was cancelled.", code="cancelled")
    else:
        err = GatewayError(f"The job ended {job.status}.", code="job_failed")
    # The gateway already retried; a client retry would only start another job.
    # A job that never reached the broker is the exception: retrying it is safe.
    err.should_retry = None if err.code == "gateway_unavailable" else False
    return err


def completion(job: Job) -> Response:
    """The sync answer for a terminal job: its chat.completion, or its mapped error."""
    if job.status == SUCCEEDED and job.raw_result is not None:  # as stored: no re-encoding
        return gateway_headers(Response(job.raw_result, mimetype="application/json"), job)
    if job.status == SUCCEEDED and job.result is not None:
        resp = jsonify(job.result)
        return gateway_headers(resp, job)
    return gateway_headers(error_response(job_error(job), job.id), job)


def page(data: list[dict[str, Any]], has_more: bool, resume: str | None = None) -> Response:
    """OpenAI's cursor page of objects (each with an ``id``). ``resume``: for a filtered list
    whose bounded scan found nothing (``shared.state.paging.scan``), the id to pass as
    ``after`` for the next page, sent as ``last_id``."""
    return jsonify(
        {
            "object": "list",
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else resume,
        }
    )

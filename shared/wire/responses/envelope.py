"""The Response object's fields that do not depend on the answer: its id, status, times and
the echo of its request (``ResponsesRequest.echo()``, kept with the job so that any process
can build the object again), and the Responses of a request with no answer yet or none to
come: ``queued`` / ``in_progress`` (``output: []``, never missing: the SDK's ``output_text``
iterates it), ``failed`` (``error: {code, message}``) and ``cancelled``.

Every Response carries each field OpenAI's API reference marks required (``error``,
``incomplete_details``, ``instructions``, ``metadata``, ``parallel_tool_calls``,
``temperature``, ``tool_choice``, ``tools``, ``top_p``...), null when there is nothing to
say; ``output_text`` is the SDKs' own and is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.wire.responses.request import ResponsesRequest

Request = ResponsesRequest | Mapping[str, Any]  # the request, or its stored echo


def echo_of(request: Request) -> Mapping[str, Any]:
    return request.echo() if isinstance(request, ResponsesRequest) else request


def envelope(
    request: Request,
    *,
    response_id: str,
    created_at: float,
    status: str,
    output: Sequence[dict[str, Any]] = (),
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    completed_at: float | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """A Response object; ``model`` is the one that answered (else the one asked for),
    ``completed_at`` is kept only for a completed response (OpenAI's rule)."""
    echo = echo_of(request)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(echo.get("background")),
        "completed_at": completed_at if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if status == "incomplete" else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "model": model or echo.get("model") or "",
        "output": list(output),
        "parallel_tool_calls": echo.get("parallel_tool_calls") is not False,
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning") or {"effort": None, "summary": None},
        "store": echo.get("store") is not False,
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice") or "auto",
        "tools": list(echo.get("tools") or []),
        "top_p": echo.get("top_p"),
        "truncation": "disabled",  # nothing is ever truncated here
        "usage": usage,
        "user": echo.get("user"),
        "metadata": dict(echo.get("metadata") or {}),
    }


def queued(
    request: Request, *, response_id: str, created_at: float, model: str | None = None
) -> dict[str, Any]:
    """What ``background: true`` answers at once, and a poll before a worker takes it."""
    return envelope(
        request, response_id=response_id, created_at=created_at, status="queued", model=model
    )


def in_progress(
    request: Request, *, response_id: str, created_at: float, model: str | None = None
) -> dict[str, Any]:
    return envelope(
        request, response_id=response_id, created_at=created_at, status="in_progress", model=model
    )


def failed(
    request: Request,
    *,
    response_id: str,
    created_at: float,
    code: str,
    message: str,
    output: Sequence[dict[str, Any]] = (),
    model: str | None = None,
) -> dict[str, Any]:
    """A response that ended in an error, with what it produced before (``output``).
    ``code`` is kept as given: OpenAI lists its own (``server_error``,
    ``rate_limit_exceeded``...) and the gateway adds its own (``stream_interrupted``); the
    SDKs read any string there, except a client built with strict response validation,
    which accepts only OpenAI's."""
    return envelope(
        request,
        response_id=response_id,
        created_at=created_at,
        status="failed",
        output=output,
        error={"code": code, "message": message},
        model=model,
    )


def cancelled(
    request: Request,
    *,
    response_id: str,
    created_at: float,
    output: Sequence[dict[str, Any]] = (),
    model: str | None = None,
) -> dict[str, Any]:
    return envelope(
        request,
        response_id=response_id,
        created_at=created_at,
        status="cancelled",
        output=output,
        model=model,
    )

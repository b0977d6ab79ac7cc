"""The API's side of reading a request body: a JSON object validated by a route's schema
(``load_body``) and a deadline checked against the config (``resolve_deadline``). A chat body
itself is parsed by ``shared/chat_request.py``, which the workers use for batch lines too."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from shared.config.settings import Settings
from shared.errors import InvalidRequest
from shared.wire.chat_schema import first_error


def load_body(schema: Schema, body: Any) -> dict[str, Any]:
    """The JSON object ``body`` validated by ``schema``, or 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        valid: dict[str, Any] = schema.load(body)
    except ValidationError as exc:
        param, message = first_error(exc.messages)
        raise InvalidRequest(f"{param}: {message}", param=param) from exc
    return valid


def resolve_deadline(settings: Settings, asked: float | None) -> float:
    q = settings.queue
    if asked is None:
        return q.deadline_s
    if asked > q.max_deadline_s:
        raise InvalidRequest(
            f"deadline_s: must be at most {q.max_deadline_s:g}", param="deadline_s"
        )
    return asked

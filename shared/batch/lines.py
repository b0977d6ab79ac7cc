"""One batch input line checked as the chat route checks a request: OpenAI's line format
(``{custom_id, method, url, body}``), then the body through the same validation, limits and
model resolution as ``POST /v1/chat/completions`` (``shared/chat_request.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.chat_request import ChatRequest, parse_chat
from shared.config.settings import Settings
from shared.errors import GatewayError

MAX_CUSTOM_ID = 512


@dataclass(frozen=True)
class LineError:
    line: int
    code: str
    message: str
    param: str | None = None

    def to_public(self) -> dict[str, Any]:
        """An entry of the Batch object's ``errors.data``."""
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(frozen=True)
class Line:
    number: int
    custom_id: str
    chat: ChatRequest


def custom_id_of(data: bytes) -> str | None:
    """The custom_id of a line already validated (finalizing needs no more)."""
    try:
        value = orjson.loads(data).get("custom_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def parse_line(settings: Settings, endpoint: str, number: int, data: bytes) -> Line | LineError:
    def bad(code: str, message: str, param: str | None = None) -> LineError:
        return LineError(number, code, message, param)

    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return bad("invalid_json_line", "This line is not valid JSON.")
    if not isinstance(obj, dict):
        return bad("invalid_json_line", "This line is not a JSON object.")
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return bad("missing_required_parameter", "custom_id: a string is required.", "custom_id")
    if len(custom_id) > MAX_CUSTOM_ID:
        return bad("invalid_value", f"custom_id: at most {MAX_CUSTOM_ID} characters.", "custom_id")
    if obj.get("method") != "POST":
        return bad("invalid_value", "method: must be POST.", "method")
    if obj.get("url") != endpoint:
        return bad("invalid_value", f"url: must be the batch's endpoint, {endpoint}.", "url")
    body = obj.get("body")
    if not isinstance(body, dict):
        return bad("missing_required_parameter", "body: a JSON object is required.", "body")
    if body.get("stream"):
        return bad("invalid_value", "body.stream: a batch request cannot stream.", "body.stream")
    try:
        chat = parse_chat(settings, body, "body")
    except GatewayError as exc:
        return bad(exc.code, exc.message, exc.param)
    return Line(number, custom_id, chat)

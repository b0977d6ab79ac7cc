"""JSON on the hot path: orjson where it can, the standard library where it cannot.

orjson encodes several times faster than ``json``, but refuses what a client's JSON may
legally hold and Python's parser accepts: integers past 64 bits (``"seed": 1e30`` written
out in digits), and it has no ``NaN``. Those fall back to ``json`` (compact separators), so
no request fails for the choice of encoder.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, OverflowError):
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    """orjson's parser, falling back to ``json`` for what it refuses (big integers, NaN)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

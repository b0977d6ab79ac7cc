"""Shape checks for a Responses request body. Each returns the value when it has the shape
asked for and otherwise raises ``InvalidRequest`` naming the field by its path
(``input[2].call_id``, ``text.format.name``), so that a malformed body is a 400 that says
what to fix, never a KeyError or a TypeError."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, NoReturn

from shared.errors import InvalidRequest

# Names of functions and of json_schema formats: OpenAI's rule, the chat schema's too.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def at(base: str, key: str | int) -> str:
    """The path of ``key`` under ``base``: ``input[2]``, ``input[2].call_id``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def refuse(param: str, message: str, *, code: str | None = None) -> NoReturn:
    raise InvalidRequest(f"{param}: {message}", param=param, code=code)


def kind_of(value: Any) -> str:
    """What a JSON value is, for a message: ``a string``, ``an array``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        refuse(param, f"expected an object, got {kind_of(value)}")
    return value


def array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        refuse(param, f"expected an array, got {kind_of(value)}")
    return value


def string(value: Any, param: str, *, nonempty: bool = False, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        refuse(param, f"expected a string, got {kind_of(value)}")
    if nonempty and not value:
        refuse(param, "must not be empty")
    if max_len is not None and len(value) > max_len:
        refuse(param, f"must be at most {max_len} characters")
    return value


def opt_string(value: Any, param: str, *, max_len: int | None = None) -> str | None:
    return None if value is None else string(value, param, max_len=max_len)


def opt_bool(value: Any, param: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    refuse(param, f"expected a boolean, got {kind_of(value)}")


def opt_number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        refuse(param, f"expected a number, got {kind_of(value)}")
    if not low <= value <= high:
        refuse(param, f"must be between {low:g} and {high:g}")
    return float(value)


def opt_int(value: Any, param: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        refuse(param, f"expected an integer, got {kind_of(value)}")
    if value < low:
        refuse(param, f"must be at least {low}")
    return value


def one_of(value: Any, param: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        shown = value if isinstance(value, str) else kind_of(value)
        refuse(param, f"`{shown}` is not one of {', '.join(choices)}")
    return value


def opt_one_of(value: Any, param: str, choices: Collection[str]) -> str | None:
    return None if value is None else one_of(value, param, choices)


def name(value: Any, param: str) -> str:
    """A function's or a schema's name: letters, digits, ``_`` and ``-``, 1 to 64."""
    text = string(value, param)
    if not NAME.match(text):
        refuse(param, "must be 1 to 64 letters, digits, underscores or dashes")
    return text


def present(**fields: Any) -> dict[str, Any]:
    """The fields that were given (not None), for a body that leaves the others out."""
    return {name: value for name, value in fields.items() if value is not None}

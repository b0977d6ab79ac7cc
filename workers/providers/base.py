"""What every adapter shares: the call error, Retry-After parsing, the adapter interface."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from shared.wire.capabilities import Capabilities


@dataclass
class ProviderCallError(Exception):
    """One failed provider call, as the provider reported it (classified in workers.classify).

    kind: "http" (an error status or error body), "timeout", "connect", "malformed" (a 2xx
    answer that is not a chat completion), "content_filter" (a 2xx answer the provider
    blocked, e.g. Z.ai's finish_reason "sensitive").
    """

    kind: str
    message: str
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.kind} status={self.status} code={self.code}: {self.message}"


class Adapter(Protocol):
    name: str
    # What the provider honours of a request: the worker skips a deployment that cannot
    # honour it before calling (``shared.wire.capabilities``).
    capabilities: Capabilities

    def complete(self, body: dict[str, Any], model: str, timeout: float) -> dict[str, Any]: ...

    def stream(
        self,
        body: dict[str, Any],
        model: str,
        timeout: float,
        emit: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """``retry-after-ms`` (OpenAI), else ``retry-after`` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_message(payload: Any, fallback: str) -> tuple[str, str | None]:
    """(message, code) from an OpenAI- or Z.ai-style error body."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            return str(err.get("message") or fallback), (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    return fallback, None

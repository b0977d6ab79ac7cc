"""The worker's half of streaming: each chunk a provider streams is appended to the job's
Redis Stream as it arrives, for any API process to relay (``gateway_api.stream_relay``).

Entries are ``{"k": kind, "d": JSON}``: ``chunk`` (a ``chat.completion.chunk``), then
``done``, or ``error`` (the stored error) when the stream broke after chunks were sent. The
first chunk of an answer served in a lesser form also carries ``"p"``: the fields degraded
(``X-Gateway-Degraded-Params``, sent with the stream's headers).
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from redis.typing import EncodableT, FieldT

from shared.keys import Keys
from shared.wire.chunks import usage_chunk, wants_usage

CHUNK, DONE, ERROR = "chunk", "done", "error"


class StreamRelay:
    def __init__(self, client: Redis, keys: Keys, job_id: str, request: dict[str, Any], ttl_s: int):
        self.r, self.key, self.ttl = client, keys.stream(job_id), int(ttl_s)
        self.include_usage = wants_usage(request)
        self.emitted = 0  # chunks the client may have seen: after one, no retry is invisible
        self.usage: dict[str, Any] | None = None
        self._template: dict[str, Any] | None = None
        # Set before the call: the request's fields this provider serves in a lesser form.
        self.degraded_params = ""

    def count_earlier(self) -> int:
        """Entries an earlier delivery of the job (a worker lost mid-stream) already sent:
        the client may hold them, so they count as emitted."""
        self.emitted = int(self.r.xlen(self.key))
        return self.emitted

    def emit(self, chunk: dict[str, Any]) -> None:
        """One provider chunk: usage is held for the end (OpenAI sends it last, in a chunk of
        its own, and only when the client asked); everything else goes out at once."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        if not chunk.get("choices"):
            return
        out = {k: v for k, v in chunk.items() if k != "usage"}
        if self.include_usage:
            out["usage"] = None
        first = self._template is None
        self._template = self._template or out
        extra = {"p": self.degraded_params} if first and self.degraded_params else None
        self._add(CHUNK, out, extra)
        self.emitted += 1

    def finish(self) -> None:
        if self.include_usage and self.usage is not None and self._template is not None:
            self._add(CHUNK, usage_chunk(self._template, self.usage))
        self._add(DONE, None)

    def fail(self, stored_error: Any) -> None:
        self._add(ERROR, stored_error)

    def _add(self, kind: str, data: Any, extra: dict[str, str] | None = None) -> None:
        pipe = self.r.pipeline(transaction=False)
        entry: dict[FieldT, EncodableT] = {"k": kind, "d": json.dumps(data, separators=(",", ":"))}
        entry.update(extra or {})
        pipe.xadd(self.key, entry)
        pipe.expire(self.key, self.ttl)
        pipe.execute()

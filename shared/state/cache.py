"""The response cache: successful answers by normalised request, per API key (tenant).

One store serves two purposes. A fresh entry (younger than ``cache.ttl_s``, or the request's
``max-age``) answers a repeated request at the front door without enqueuing (``hit``). Any
entry younger than ``cache.stale_ttl_s`` is the cached-response fallback when every provider
failed (``stale``). Entries are bounded by ``cache.max_entries`` and ``cache.max_bytes``
(``cache_put.lua``), oldest first, so the cache never fills the Redis the broker lives in.

The key is every field that shapes the answer (``cache_digest``), so an answer never serves a
request that asked for something else, and a stored answer is always one that honoured every
such field: a deployment that cannot is skipped (``shared.wire.capabilities``), and an answer
served in a lesser form (Z.ai's json_schema as json_object) is not stored. ``stream`` and
``stream_options`` are left out: a streamed answer is assembled with everything a
non-streamed one carries (``shared.wire.chunks``, logprobs included), and replayed as chunks.

By default only deterministic requests (``temperature: 0`` or a ``seed``) are answered from
the cache (``cache.deterministic_only``). Per request: ``Cache-Control: no-cache`` (or
``"gateway": {"cache": "no-cache"}``) skips the lookup, ``no-store`` keeps the answer out of
the cache, ``max-age=N`` accepts only an entry at most N seconds old.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared import lua
from shared.config.settings import CacheSettings
from shared.keys import Keys

# Part of every key: bump it when the stored shape or the normalisation changes, and old
# entries are simply never found again (they age out). 3: streamed answers keep their
# logprobs, and Z.ai answers no longer stand for requests it could not honour.
CACHE_FORMAT = "3"
# Fields that do not change the answer (or must not split the cache): left out of the key.
_NOT_IN_KEY = frozenset(
    {"user", "metadata", "store", "stream", "stream_options", "service_tier", "gateway"}
)


def cache_digest(request: Mapping[str, Any]) -> str:
    """Hash of the normalised request: the resolved model, messages, every generation
    parameter, tools and response_format; key order and formatting do not matter."""
    body = {k: v for k, v in request.items() if k not in _NOT_IN_KEY and v is not None}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{CACHE_FORMAT}:{canonical}".encode()).hexdigest()


def deterministic(request: Mapping[str, Any]) -> bool:
    return request.get("temperature") == 0 or request.get("seed") is not None


@dataclass(frozen=True)
class Policy:
    lookup: bool  # may be answered from the cache
    store: bool  # its answer may be stored
    max_age_s: float | None  # only entries at most this old


def parse_cache_control(header: str | None) -> tuple[set[str], float | None]:
    directives: set[str] = set()
    max_age: float | None = None
    for part in (header or "").split(","):
        name, _, value = part.strip().lower().partition("=")
        if name == "max-age":
            seconds = value.strip().strip('"')
            # delta-seconds (RFC 9111 1.2.2), ASCII digits only; anything else is ignored.
            if seconds.isascii() and seconds.isdigit():
                max_age = float(seconds)
        elif name:
            directives.add(name)
    return directives, max_age


def policy(
    settings: CacheSettings,
    request: Mapping[str, Any],
    option: str | None = None,
    cache_control: str | None = None,
) -> Policy:
    """``option``: the request's ``gateway.cache`` (default | no-cache | no-store)."""
    directives, max_age = parse_cache_control(cache_control)
    no_store = option == "no-store" or "no-store" in directives
    no_cache = option == "no-cache" or "no-cache" in directives or max_age == 0
    eligible = settings.enabled and (not settings.deterministic_only or deterministic(request))
    return Policy(lookup=eligible and not no_cache, store=not no_store, max_age_s=max_age)


@dataclass(frozen=True)
class Entry:
    result: dict[str, Any]
    stored_at: float
    provider: str | None

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.stored_at)


class ResponseCache:
    def __init__(self, client: Redis, keys: Keys, settings: CacheSettings) -> None:
        self.r, self.keys, self.s = client, keys, settings
        self._put = client.register_script(lua.source("cache_put"))

    def _key(self, owner: str, request: Mapping[str, Any]) -> str:
        return self.keys.cache(owner, cache_digest(request))

    def put(
        self,
        owner: str,
        request: Mapping[str, Any],
        result: dict[str, Any],
        provider: str | None,
        pipe: Pipeline | None = None,
    ) -> None:
        """Store (or, with ``pipe``, queue storing) a successful answer."""
        value = json.dumps(
            {"stored_at": time.time(), "provider": provider, "result": result},
            separators=(",", ":"),
        )
        self._put(
            keys=[self._key(owner, request), self.keys.cache_index, self.keys.cache_sizes],
            args=[
                value,
                int(self.retention_s * 1000),
                0,
                self.s.max_entries,
                self.s.max_bytes,
            ],
            client=pipe,
        )

    @property
    def retention_s(self) -> float:
        """Kept for the longer of fresh hits and the stale fallback."""
        return max(self.s.ttl_s, self.s.stale_ttl_s)

    def get(self, owner: str, request: Mapping[str, Any]) -> Entry | None:
        raw = self.r.get(self._key(owner, request))
        if not raw:
            return None
        doc = json.loads(raw)
        return Entry(doc["result"], float(doc["stored_at"]), doc.get("provider"))

    def fresh(
        self, owner: str, request: Mapping[str, Any], max_age_s: float | None
    ) -> Entry | None:
        """An entry young enough to answer with (``cache.ttl_s``, or less by ``max-age``)."""
        entry = self.get(owner, request)
        limit = self.s.ttl_s if max_age_s is None else min(max_age_s, self.s.ttl_s)
        if entry is None or entry.age_s > limit:
            return None
        return entry

    def stale(self, owner: str, request: Mapping[str, Any]) -> Entry | None:
        """Any entry still kept: the cached-response fallback."""
        entry = self.get(owner, request)
        if entry is None or entry.age_s > self.s.stale_ttl_s:
            return None
        return entry

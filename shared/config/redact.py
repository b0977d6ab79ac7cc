"""What of a config may be shown: secrets replaced by ``***``, each value with its layer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.config.layers import ENV_SECRET_FIELDS, flatten
from shared.config.loader import LoadedConfig

# Every field the Redis layer and the HTTP source may fill from the environment is among these.
SECRET_FIELDS = ENV_SECRET_FIELDS | {"previous_secrets"}
REDACTED = "***"

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]+)@")


def redact(doc: Any) -> Any:
    """A copy with every secret replaced by ``***`` (provider keys, tokens, URL passwords)."""
    if isinstance(doc, Mapping):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if key in SECRET_FIELDS and value:
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(doc, list):
        return [redact(v) for v in doc]
    if isinstance(doc, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", doc)
    return doc


def value_sources(loaded: LoadedConfig) -> dict[str, str]:
    """Each dotted path of the merged config and the layer its value came from."""
    out: dict[str, str] = {}
    for path in flatten(loaded.document):
        parts = path.split(".")
        while parts and ".".join(parts) not in loaded.sources:
            parts.pop()
        out[path] = loaded.sources.get(".".join(parts), "default") if parts else "default"
    return out


def describe(loaded: LoadedConfig) -> dict[str, Any]:
    """What ``GET /admin/config`` and ``config show`` print: redacted, with sources."""
    return {
        "version": loaded.settings.version,
        "redis_version": loaded.redis_version,
        "config": redact(loaded.document),
        "sources": value_sources(loaded),
    }

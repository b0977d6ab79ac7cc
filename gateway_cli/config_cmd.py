"""``llm-gateway config check|show``."""

from __future__ import annotations

import json
import sys

from shared.config import _flatten, load_config, redact
from shared.errors import ConfigError


def check(path: str | None) -> int:
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        for field, messages in sorted(exc.errors.items()):
            print(f"{field}: {'; '.join(messages)}", file=sys.stderr)
        return 1
    print(
        f"config OK (version {loaded.settings.version}): "
        f"{len(loaded.settings.providers)} provider(s), {len(loaded.settings.models)} model(s)"
    )
    return 0


def show(path: str | None) -> int:
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    doc = redact(loaded.document)
    flat = _flatten(doc)
    sources = {k: loaded.sources.get(k) or _nearest(k, loaded.sources) for k in flat}
    print(
        json.dumps(
            {"version": loaded.settings.version, "config": doc, "sources": sources},
            indent=2,
            default=str,
        )
    )
    return 0


def _nearest(path: str, sources: dict[str, str]) -> str:
    parts = path.split(".")
    while parts:
        parts.pop()
        hit = sources.get(".".join(parts))
        if hit:
            return hit
    return "default"

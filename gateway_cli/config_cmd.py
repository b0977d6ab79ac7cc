"""``llm-gateway config check|show|set|push``: every layer, the Redis one included."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from shared.config.layers import read_file
from shared.config.redact import describe
from shared.config.sources import ConfigSources
from shared.config.store import VersionConflict, merge_patch
from shared.errors import ConfigError

_SEGMENT = re.compile(r'"([^"]+)"|([^.]+)')


def _errors(exc: ConfigError) -> int:
    for field, messages in sorted(exc.errors.items()):
        print(f"{field or 'config'}: {'; '.join(messages)}", file=sys.stderr)
    return 1


def check(path: str | None) -> int:
    try:
        loaded = ConfigSources(path).load()
    except ConfigError as exc:
        return _errors(exc)
    print(
        f"config OK (version {loaded.settings.version}, Redis layer v{loaded.redis_version}): "
        f"{len(loaded.settings.providers)} provider(s), {len(loaded.settings.models)} model(s)"
    )
    return 0


def show(path: str | None) -> int:
    try:
        loaded = ConfigSources(path).load()
    except ConfigError as exc:
        return _errors(exc)
    print(json.dumps(describe(loaded), indent=2, default=str))
    return 0


def parse_path(dotted: str) -> list[str]:
    """``models."glm-4.6".0`` -> ["models", "glm-4.6", "0"]."""
    parts: list[str] = []
    pos = 0
    while pos < len(dotted):
        m = _SEGMENT.match(dotted, pos)
        if m is None:
            raise ValueError(f"cannot read the path {dotted!r}")
        parts.append(m.group(1) or m.group(2))
        pos = m.end()
        if pos < len(dotted):
            if dotted[pos] != ".":
                raise ValueError(f"cannot read the path {dotted!r}")
            pos += 1
    if not parts:
        raise ValueError("an empty path")
    return parts


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _write(
    config: str | None, change: Callable[[dict[str, Any]], dict[str, Any]], note: str
) -> int:
    try:
        sources = ConfigSources(config)
        version = sources.write(change, "cli", note)
    except ConfigError as exc:
        return _errors(exc)
    except VersionConflict as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 1
    loaded = sources.load(fetch=True)
    print(f"Redis layer v{version} stored; config version {loaded.settings.version}")
    return 0


def set_value(config: str | None, dotted: str, raw: str) -> int:
    try:
        path = parse_path(dotted)
    except ValueError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    patch: Any = _parse_value(raw)
    for part in reversed(path):
        patch = {part: patch}
    return _write(config, lambda layer: merge_patch(layer, patch), f"set {dotted}")


def push(config: str | None, layer_file: str) -> int:
    try:
        layer = read_file(layer_file)  # ${VAR} kept: each process resolves its own
    except ConfigError as exc:
        return _errors(exc)
    return _write(config, lambda _: dict(layer), f"push {layer_file}")

"""The Redis layer of the configuration: versioned documents the admin API and CLI write.

Each write (a merge patch, a push, a rollback) stores the whole layer as a new version and
makes it current in one compare-and-set step (``config_put.lua``), then announces the version
on a pub/sub channel so every API and worker process reloads at once. The last
``KEEP_VERSIONS`` versions are kept for ``GET /admin/config/versions`` and rollback.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis

from shared import lua
from shared.config.redact import SECRET_FIELDS
from shared.config.secret_box import is_sealed
from shared.errors import ConfigError, Conflict
from shared.keys import Keys

KEEP_VERSIONS = 100
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$")
# Where a process finds Redis (and so this layer) cannot come from this layer, nor which
# environment variables these layers may read (an admin key must not widen that).
_NOT_IN_REDIS = ("redis", "broker", "config.env_allow")
_NOT_IN_HTTP = ("redis", "broker", "refresh.http_source", "config.env_allow")


@dataclass(frozen=True)
class Version:
    number: int
    layer: dict[str, Any]
    created_at: float
    actor: str
    note: str

    def describe(self, current: int) -> dict[str, Any]:
        return {
            "version": self.number,
            "created_at": self.created_at,
            "actor": self.actor,
            "note": self.note,
            "current": self.number == current,
        }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, ``null`` deletes, anything else replaces.
    (Ten lines; a library would add a dependency for nothing.)"""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _paths(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.append((path, value))
        if isinstance(value, Mapping):
            out += _paths(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    out += _paths(item, f"{path}.{i}")
    return out


def check_layer(layer: Any, source: str) -> None:
    """What a dynamic layer may hold. The Redis layer never stores a secret in clear (a
    ``${VAR}`` reference each process resolves from its own environment, or a value sealed
    with ``GATEWAY_SECRET_KEY``), and neither dynamic layer may move the gateway to another
    Redis or broker."""
    if not isinstance(layer, Mapping):
        raise ConfigError({source: ["must be a JSON object"]})
    forbidden = _NOT_IN_REDIS if source == "redis" else _NOT_IN_HTTP
    errors: dict[str, list[str]] = {}
    for path, value in _paths(layer):
        if path in forbidden:
            errors[path] = [
                f"cannot be set by the {source} layer; set it in the file or the environment"
            ]
        leaf = path.rsplit(".", 1)[-1]
        secret = source == "redis" and leaf in SECRET_FIELDS and value is not None
        stored_safely = isinstance(value, str) and (_REFERENCE.match(value) or is_sealed(value))
        if secret and not stored_safely:
            errors[path] = [
                "secrets are not stored in Redis in clear: give a ${VAR} reference to an "
                "environment variable every process has, or set GATEWAY_SECRET_KEY where "
                "the change is made so it is stored sealed"
            ]
    if errors:
        raise ConfigError(errors)


def _version(number: int, text: str) -> Version:
    record = json.loads(text)
    return Version(number, record["layer"], record["created_at"], record["actor"], record["note"])


class VersionConflict(Conflict):
    """The layer changed since the version a write was based on (compare-and-set lost)."""

    code = "config_conflict"


class ConfigStore:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._put = client.register_script(lua.source("config_put"))

    def current_number(self) -> int:
        return int(self.r.get(self.keys.config_current) or 0)

    def get(self, number: int) -> Version | None:
        raw = self.r.hget(self.keys.config_versions, str(number))
        if not raw:
            return None
        return _version(number, str(raw))

    def current(self) -> Version | None:
        number = self.current_number()
        return self.get(number) if number else None

    def versions(self) -> list[Version]:
        raw: dict[str, str] = self.r.hgetall(self.keys.config_versions)  # type: ignore[assignment]
        out = [_version(int(number), text) for number, text in raw.items()]
        return sorted(out, key=lambda v: v.number, reverse=True)

    def put(self, layer: Mapping[str, Any], base: int, actor: str, note: str) -> int:
        """Store ``layer`` as the next version if ``base`` is still current; else
        VersionConflict."""
        check_layer(layer, "redis")
        record = {"layer": layer, "created_at": round(time.time(), 3), "actor": actor, "note": note}
        res = self._put(
            keys=[self.keys.config_seq, self.keys.config_versions, self.keys.config_current],
            args=[str(base), json.dumps(record), KEEP_VERSIONS, self.keys.config_channel],
        )
        if res[0] != "ok":
            raise VersionConflict(str(res[1]))
        return int(res[1])

    def update(
        self,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        actor: str,
        note: str,
        validate: Callable[[dict[str, Any]], None],
        attempts: int = 5,
    ) -> tuple[int, dict[str, Any]]:
        """Read the current layer, ``change`` it, ``validate`` the result (raises ConfigError)
        and store it; a concurrent writer makes it start again from their version, so no
        write is lost. Returns (new version, new layer)."""
        for _ in range(attempts):
            base = self.current()
            layer = change(dict(base.layer) if base else {})
            check_layer(layer, "redis")
            validate(layer)
            try:
                return self.put(layer, base.number if base else 0, actor, note), layer
            except VersionConflict:
                continue
        raise VersionConflict("the config layer kept changing; try again")

"""Every config layer, including the two that change while the fleet runs.

Above the static layers (defaults, file, environment: ``shared.config.layers``) come the Redis
layer (``shared.config.store``: the admin API and ``llm-gateway config set/push``) and the HTTP
config source (``refresh.http_source: {url, token}``, a JSON object fetched with the bearer
token). A layer that does not validate is refused and logged; the process keeps what it has.
In these two layers ``${VAR}`` is read only in secret fields, and only for names matching
``config.env_allow``; and neither may leave the gateway without client keys unless
``auth.open: true``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import RedisError

from shared.config.layers import (
    default_models,
    env_allow_of,
    merge_layers,
    resolve_dynamic,
    static_layers,
)
from shared.config.loader import LoadedConfig, build
from shared.config.redact import SECRET_FIELDS
from shared.config.secret_box import box_from, open_secrets, seal_secrets
from shared.config.settings import Settings
from shared.config.store import ConfigStore, check_layer
from shared.errors import ConfigError
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.wire.tls import shared_ssl_context

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 5.0
NO_CLIENT_KEYS = (
    "no client keys would be left, so every /v1 route would answer without a key: keep at "
    "least one key, or set auth.open: true to run without keys on purpose"
)


def no_client_keys(settings: Settings) -> bool:
    """Would this config let every request in (no client keys, and auth.open not set)?"""
    return not settings.auth.keys and not settings.auth.open


@dataclass
class _Remote:
    redis_version: int = 0
    redis_layer: dict[str, Any] | None = None
    http_layer: dict[str, Any] | None = None  # the last good answer of the HTTP source


class ConfigSources:
    """Loads the merged config of every layer for one process (its file and environment)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        client: Redis | None = None,
        http: httpx.Client | None = None,
        static: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        """``static`` replaces the file and environment layers (an app built from a given
        document, as tests do)."""
        self.env = os.environ if env is None else env
        self.path = path or self.env.get("GATEWAY_CONFIG_FILE") or None
        self._static = static
        self._client = client
        self._http = http
        self.remote = _Remote()
        self.refused_at_start: dict[str, list[str]] | None = None
        self.box = box_from(self.env)  # GATEWAY_SECRET_KEY: seals and opens stored secrets
        base, _ = merge_layers(self.static_layers())
        self.keys = Keys(str((base.get("redis") or {}).get("prefix") or "gw"))
        self._redis_url = str((base.get("redis") or {}).get("url"))

    def static_layers(self) -> list[tuple[str, dict[str, Any]]]:
        return (
            list(self._static) if self._static is not None else static_layers(self.path, self.env)
        )

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = make_redis(self._redis_url, max_connections=4)
        return self._client

    def store(self) -> ConfigStore:
        return ConfigStore(self.client, self.keys)

    # -- reading the dynamic layers --------------------------------------------------------
    def read_redis_layer(self) -> None:
        """The current Redis version (unchanged on a Redis error: logged, the last one kept)."""
        try:
            store = self.store()
            number = store.current_number()
            if number != self.remote.redis_version or self.remote.redis_layer is None:
                version = store.get(number) if number else None
                self.remote.redis_version = number
                self.remote.redis_layer = dict(version.layer) if version else {}
        except RedisError as exc:
            log.warning("config: Redis layer unreadable (%s); keeping the last", exc)
            if self.remote.redis_layer is None:
                self.remote.redis_layer = {}

    def fetch_http(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """GET the HTTP source; ConfigError naming ``refresh.http_source`` when it fails."""
        url = str(source.get("url"))
        headers = {"Accept": "application/json"}
        if source.get("token"):
            headers["Authorization"] = f"Bearer {source['token']}"
        try:
            if self._http is not None:
                resp = self._http.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
            else:
                resp = httpx.get(
                    url, headers=headers, timeout=HTTP_TIMEOUT_S, verify=shared_ssl_context()
                )
        except httpx.HTTPError as exc:
            raise ConfigError(
                {"refresh.http_source.url": [f"config API unreachable: {type(exc).__name__}"]}
            ) from exc
        if resp.status_code != 200:
            raise ConfigError(
                {"refresh.http_source.url": [f"config API answered HTTP {resp.status_code}"]}
            )
        try:
            layer = resp.json()
        except ValueError as exc:
            raise ConfigError(
                {"refresh.http_source.url": ["config API sent invalid JSON"]}
            ) from exc
        check_layer(layer, "http")
        return dict(layer)

    @staticmethod
    def _http_source(
        layers: list[tuple[str, dict[str, Any]]],
    ) -> Mapping[str, Any] | None:
        merged, _ = merge_layers(layers)
        source = (merged.get("refresh") or {}).get("http_source")
        return source if isinstance(source, Mapping) and source.get("url") else None

    # -- merging ---------------------------------------------------------------------------
    def load(
        self,
        redis_layer: dict[str, Any] | None = None,
        fetch: bool = True,
        strict_http: bool = True,
    ) -> LoadedConfig:
        """Every layer merged and validated. ``redis_layer`` replaces the stored one (to
        validate a proposed change); ``fetch`` re-reads Redis and the HTTP source; with
        ``strict_http`` an unreachable HTTP source is a ConfigError, otherwise its last good
        answer is used (and the failure logged)."""
        if fetch:
            self.read_redis_layer()
        layer = (self.remote.redis_layer or {}) if redis_layer is None else redis_layer
        # The file and environment are read once, the Redis layer resolved once, per load.
        # Which variables the dynamic layers may read comes from the file and environment.
        static = self.static_layers()
        base, _ = merge_layers(static)
        allow = env_allow_of(base)
        opened = open_secrets(layer, self.box)
        resolved = ("redis", resolve_dynamic(opened, self.env, allow, "redis"))
        source = self._http_source([*static, resolved])
        if source is None:
            self.remote.http_layer = None
        elif fetch or self.remote.http_layer is None:
            try:
                self.remote.http_layer = self.fetch_http(source)
            except ConfigError:
                if strict_http or self.remote.http_layer is None:
                    raise
                count_reload("http_source_error")
                log.warning("config: HTTP source failed; keeping its last answer", exc_info=True)
        extra = [resolved]
        if self.remote.http_layer is not None:
            extra.append(("http", resolve_dynamic(self.remote.http_layer, self.env, allow, "http")))
        merged, sources = merge_layers(static + extra)
        default_models(merged)
        loaded = replace(build(merged, sources), redis_version=self.remote.redis_version)
        # The dynamic layers never take away the client keys the file and environment set,
        # not even at start (a stored layer that does is skipped, as an invalid one is).
        static_auth = base.get("auth")
        static_keys = isinstance(static_auth, Mapping) and bool(static_auth.get("keys"))
        if static_keys and no_client_keys(loaded.settings):
            raise ConfigError({"auth.keys": [NO_CLIENT_KEYS]})
        return loaded

    def load_at_start(self) -> LoadedConfig:
        """``load()`` for a process that is starting: a stored Redis layer that no longer
        validates (written by an older version, or around the API's checks) is reported and
        skipped, as a refused refresh is, instead of keeping the process from starting. The
        rest must validate on its own."""
        try:
            return self.load()
        except ConfigError as exc:
            if not self.remote.redis_layer:
                raise
            loaded = self.load(redis_layer={}, fetch=False)
            self.refused_at_start = exc.errors
            count_reload("refused")
            log.error(
                "config: the stored Redis layer v%d does not validate; starting without it: %s",
                self.remote.redis_version,
                "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(exc.errors.items())),
            )
            return replace(loaded, redis_version=0)

    def write(
        self, change: Callable[[dict[str, Any]], dict[str, Any]], actor: str, note: str
    ) -> int:
        """Change the Redis layer (``change`` maps the stored layer to the new one), storing
        it as a new version only if the whole config it makes is valid and keeps client keys
        (or says ``auth.open: true``); ConfigError names the fields otherwise. Every process
        hears of the new version at once."""

        def validate(layer: dict[str, Any]) -> None:
            # Whatever this process's own keys: the layer applies to every process of the
            # fleet, and some may serve public addresses.
            if no_client_keys(self.load(redis_layer=layer, fetch=False).settings):
                raise ConfigError({"auth.keys": [NO_CLIENT_KEYS]})

        box = self.box

        def sealed(layer: dict[str, Any]) -> dict[str, Any]:
            new = change(layer)
            return seal_secrets(new, box, SECRET_FIELDS) if box is not None else new

        version, _ = self.store().update(sealed, actor, note, validate)
        return version


def count_reload(result: str) -> None:
    # Imported here, not at the top: ``llm-gateway api`` loads the config in the gunicorn
    # master before it sets PROMETHEUS_MULTIPROC_DIR, and prometheus-client picks its
    # (multiprocess or not) value store when shared.metrics is first imported.
    from shared import metrics

    metrics.CONFIG_RELOADS.labels(result).inc()

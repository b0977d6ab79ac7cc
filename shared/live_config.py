"""Every config layer, including the two that change while the fleet runs, and live refresh.

Above the static layers (defaults, file, environment: ``shared.config``) come the Redis layer
(``shared.config_store``: the admin API and ``llm-gateway config set/push``) and the HTTP
config source (``refresh.http_source: {url, token}``, a JSON object fetched with the bearer
token). ``ConfigWatcher`` reloads every ``refresh.interval_s`` and at once when a new Redis
version is announced; a change that does not validate is refused and logged, and the process
keeps the config it has.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import RedisError

from shared.config import (
    SECRET_FIELDS,
    LoadedConfig,
    build,
    default_models,
    merge_layers,
    static_layers,
    substitute_env,
)
from shared.config_store import ConfigStore, check_layer
from shared.errors import ConfigError
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.secret_box import box_from, open_secrets, seal_secrets

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 5.0
# Changing these needs a restart: they say where the fleet's state lives.
RESTART_ONLY = ("redis", "broker")
# Applied, but only a restart puts these to use (pool size, lane split, CORS set-up). The
# sweeps' and health checks' intervals apply live (workers.duties reads them at each run).
ON_RESTART = (
    ("worker", "concurrency"),
    ("worker", "interactive_share"),
    ("cors", "allowed_origins"),
)


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
                resp = httpx.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
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
        static = self.static_layers()
        resolved = ("redis", substitute_env(open_secrets(layer, self.box), self.env))
        source = self._http_source([*static, resolved])
        if source is None:
            self.remote.http_layer = None
        elif fetch or self.remote.http_layer is None:
            try:
                self.remote.http_layer = self.fetch_http(source)
            except ConfigError:
                if strict_http or self.remote.http_layer is None:
                    raise
                _count("http_source_error")
                log.warning("config: HTTP source failed; keeping its last answer", exc_info=True)
        extra = [resolved]
        if self.remote.http_layer is not None:
            extra.append(("http", substitute_env(self.remote.http_layer, self.env)))
        merged, sources = merge_layers(static + extra)
        default_models(merged)
        return replace(build(merged, sources), redis_version=self.remote.redis_version)

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
            _count("refused")
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
        it as a new version only if the whole config it makes is valid; ConfigError names the
        fields otherwise. Every process hears of the new version at once."""

        def validate(layer: dict[str, Any]) -> None:
            self.load(redis_layer=layer, fetch=False)

        box = self.box

        def sealed(layer: dict[str, Any]) -> dict[str, Any]:
            new = change(layer)
            return seal_secrets(new, box, SECRET_FIELDS) if box is not None else new

        version, _ = self.store().update(sealed, actor, note, validate)
        return version


def _count(result: str) -> None:
    # Imported here, not at the top: ``llm-gateway api`` loads the config in the gunicorn
    # master before it sets PROMETHEUS_MULTIPROC_DIR, and prometheus-client picks its
    # (multiprocess or not) value store when shared.metrics is first imported.
    from shared import metrics

    metrics.CONFIG_RELOADS.labels(result).inc()


def restart_only_changes(old: LoadedConfig, new: LoadedConfig) -> list[str]:
    return [k for k in RESTART_ONLY if old.document.get(k) != new.document.get(k)]


def on_restart_changes(old: LoadedConfig, new: LoadedConfig) -> list[str]:
    def value(doc: dict[str, Any], section: str, key: str) -> Any:
        return (doc.get(section) or {}).get(key)

    return [
        f"{section}.{key}"
        for section, key in ON_RESTART
        if value(old.document, section, key) != value(new.document, section, key)
    ]


class ConfigWatcher:
    """Keeps one process's config current: polls every ``refresh.interval_s``, and listens on
    the change channel so a new Redis version applies at once."""

    def __init__(
        self,
        sources: ConfigSources,
        current: LoadedConfig,
        apply: Callable[[LoadedConfig], None],
    ) -> None:
        self.sources, self.current, self.apply = sources, current, apply
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # Shown by GET /admin/config: why the last change (or the stored layer at start-up)
        # was refused.
        self.last_error: dict[str, list[str]] | None = sources.refused_at_start

    def refresh(self) -> str:
        """Reload; returns "applied", "unchanged" or "refused"."""
        with self._lock:
            try:
                new = self.sources.load(strict_http=False)
            except ConfigError as exc:
                return self._refuse(exc.errors)
            if new.settings.version == self.current.settings.version:
                self.current = replace(self.current, redis_version=new.redis_version)
                return "unchanged"
            moved = restart_only_changes(self.current, new)
            if moved:
                return self._refuse({k: ["changing this needs a restart"] for k in moved})
            try:
                self.apply(new)
            except Exception:
                log.exception("config: applying version %s failed", new.settings.version)
                return self._refuse({"": ["applying the new config failed"]})
            log.warning(
                "config: now version %s (was %s; Redis layer v%d)",
                new.settings.version,
                self.current.settings.version,
                new.redis_version,
                extra={"config_version": new.settings.version},
            )
            later = on_restart_changes(self.current, new)
            if later:
                log.warning("config: %s changed; takes effect on restart", ", ".join(later))
            self.current, self.last_error = new, None
            _count("applied")
            return "applied"

    def _refuse(self, errors: dict[str, list[str]]) -> str:
        if errors != self.last_error:  # once per distinct problem, not every interval
            log.error(
                "config: change refused, still serving version %s: %s",
                self.current.settings.version,
                "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(errors.items())),
            )
        self.last_error = errors
        _count("refused")
        return "refused"

    def start(self) -> ConfigWatcher:
        threading.Thread(target=self._run, name="config-watcher", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _interval(self) -> float:
        raw = self.current.settings.raw.get("refresh") or {}
        return float(raw.get("interval_s") or 10)

    def _run(self) -> None:
        pubsub = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.sources.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.sources.keys.config_channel)
                pubsub.get_message(timeout=self._interval())
            except RedisError as exc:
                log.warning("config: change channel unavailable (%s)", type(exc).__name__)
                pubsub = None
                if self._stop.wait(self._interval()):
                    break
            if self._stop.is_set():
                break
            try:
                self.refresh()
            except Exception:
                log.exception("config: refresh failed")
        if pubsub is not None:
            with contextlib.suppress(RedisError):
                pubsub.close()

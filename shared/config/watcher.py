"""Live refresh: ``ConfigWatcher`` reloads every ``refresh.interval_s`` and at once when a new
Redis version is announced; a change that does not validate, or that would take away a
process's last client key while ``auth.open`` is not true, is refused and logged, and the
process keeps the config it has."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError

from shared.config.loader import LoadedConfig
from shared.config.sources import NO_CLIENT_KEYS, ConfigSources, count_reload, no_client_keys
from shared.errors import ConfigError

log = logging.getLogger(__name__)
# Changing these needs a restart: they say where the fleet's state lives.
RESTART_ONLY = ("redis", "broker")
# Applied, but only a restart puts these to use (pool size, lane split, CORS set-up). The
# sweeps' and health checks' intervals apply live (workers.duties reads them at each run).
ON_RESTART = (
    ("worker", "concurrency"),
    ("worker", "interactive_share"),
    ("cors", "allowed_origins"),
)


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
            # Authentication never fails open at run time: whichever layer changed (Redis, the
            # HTTP source, an edited file), a process with client keys (or auth.open) does not
            # end up with neither. (One that started so, on loopback, stays as it started.)
            if no_client_keys(new.settings) and not no_client_keys(self.current.settings):
                return self._refuse({"auth.keys": [NO_CLIENT_KEYS]})
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
            count_reload("applied")
            return "applied"

    def _refuse(self, errors: dict[str, list[str]]) -> str:
        if errors != self.last_error:  # once per distinct problem, not every interval
            log.error(
                "config: change refused, still serving version %s: %s",
                self.current.settings.version,
                "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(errors.items())),
            )
        self.last_error = errors
        count_reload("refused")
        return "refused"

    def start(self) -> ConfigWatcher:
        threading.Thread(target=self._run, name="config-watcher", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _interval(self) -> float:
        return self.current.settings.refresh.interval_s

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

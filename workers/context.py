"""Everything a worker process builds once: settings, Redis, job store, Celery app, adapters.

Built lazily on first use in each process (after gevent has patched, after any fork).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from celery import Celery
from redis import Redis

from shared.celery_app import make_celery
from shared.config.loader import LoadedConfig
from shared.config.settings import Settings
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.wire.task_message import same_redis
from shared.wiring import Stores
from workers.providers.base import Adapter
from workers.providers.registry import build_adapters

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    loaded: LoadedConfig
    redis: Redis
    raw: Redis  # the same database, answering bytes (file contents)
    keys: Keys
    stores: Stores  # replaced whole when the config changes (shared/wiring.py)
    celery: Celery
    adapters: dict[str, Adapter]
    # The broker is the job store's Redis: released jobs go in by Lua (shared/wire/task_message.py).
    inline_publish: bool = False
    sources: ConfigSources | None = None
    watcher: ConfigWatcher | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def apply(self, new: LoadedConfig) -> None:
        """Use ``new`` for every job from now on: the stores rebuilt from its settings and
        swapped in whole. Only providers whose settings changed get a new adapter (connection
        pool); the old one serves the calls already using it and is closed once they have had
        time to finish. Worker concurrency, Redis and the broker keep their values until a
        restart."""
        s, old = new.settings, self.settings
        changed = {n for n, p in s.providers.items() if old.providers.get(n) != p}
        gone = set(old.providers) - set(s.providers)
        adapters = dict(self.adapters)
        retired = [adapters.pop(n) for n in changed | gone if n in adapters]
        adapters.update(build_adapters({n: s.providers[n] for n in changed}))
        self.adapters = adapters
        self.stores = Stores.build(self.redis, self.raw, self.keys, s)
        self.loaded = new
        if retired:
            grace = max((p.timeout_s for p in old.providers.values()), default=60) + 5
            timer = threading.Timer(grace, _close, args=(retired,))
            timer.daemon = True
            timer.start()

    def watch(self) -> None:
        """Start live refresh (once per process)."""
        if self.watcher is None and self.sources is not None:
            self.watcher = ConfigWatcher(self.sources, self.loaded, self.apply).start()

    @classmethod
    def build(cls, loaded: LoadedConfig, sources: ConfigSources | None = None) -> WorkerContext:
        s = loaded.settings
        client = make_redis(
            s.redis_url, max_connections=max(16, s.worker.concurrency // 4), autopipeline=True
        )
        raw = make_redis(s.redis_url, decode=False)
        keys = Keys(s.redis_prefix)
        return cls(
            loaded=loaded,
            redis=client,
            raw=raw,
            keys=keys,
            stores=Stores.build(client, raw, keys, s),
            celery=make_celery(s),
            adapters=build_adapters(s.providers),
            inline_publish=same_redis(s.broker_url, s.redis_url),
            sources=sources,
        )


def _close(adapters: list[Adapter]) -> None:
    for adapter in adapters:
        try:
            adapter.close()
        except Exception:
            log.warning("closing a retired adapter failed", exc_info=True)


_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    """The process's context, from every config layer (file, environment, Redis, HTTP)."""
    global _context
    with _lock:
        if _context is None:
            sources = ConfigSources()
            _context = WorkerContext.build(sources.load_at_start(), sources)
        return _context

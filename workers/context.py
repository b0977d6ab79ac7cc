"""Everything a worker process builds once: settings, Redis, job store, Celery app, adapters.

Built lazily on first use in each process (after gevent has patched, after any fork).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from celery import Celery
from redis import Redis

from shared.batch.batch_store import ENDED_TTL_S, BatchStore
from shared.batch.file_store import FileStore, file_store
from shared.celery_app import make_celery
from shared.config.loader import LoadedConfig
from shared.config.settings import Settings
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.spend.usage import SpendStore
from shared.state.breaker import Breakers
from shared.state.cache import ResponseCache
from shared.state.fair import FairShare
from shared.state.fleet_stats import FleetStats
from shared.state.jobs import JobStore
from shared.state.provider_health import HealthStore
from shared.state.provider_stats import ProviderStats
from shared.state.quota import ProviderQuotas
from shared.state.ratelimit import RateLimiter
from shared.webhooks import WebhookStore
from shared.wire.task_message import same_redis
from workers.providers.base import Adapter
from workers.providers.registry import build_adapters

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    redis: Redis
    keys: Keys
    store: JobStore
    celery: Celery
    adapters: dict[str, Adapter]
    breakers: Breakers
    health: HealthStore
    cache: ResponseCache
    limiter: RateLimiter
    quotas: ProviderQuotas
    stats: FleetStats
    loaded: LoadedConfig
    fair: FairShare
    files: FileStore
    batches: BatchStore
    webhooks: WebhookStore
    provider_stats: ProviderStats
    spend: SpendStore
    # The broker is the job store's Redis: released jobs go in by Lua (shared/wire/task_message.py).
    inline_publish: bool = False
    sources: ConfigSources | None = None
    watcher: ConfigWatcher | None = field(default=None, repr=False)

    def apply(self, new: LoadedConfig) -> None:
        """Use ``new`` for every job from now on. Only providers whose settings changed get a
        new adapter (connection pool); the old one serves the calls already using it and is
        closed once they have had time to finish. Worker concurrency, Redis and the broker
        keep their values until a restart."""
        s, old = new.settings, self.settings
        changed = {n for n, p in s.providers.items() if old.providers.get(n) != p}
        gone = set(old.providers) - set(s.providers)
        adapters = dict(self.adapters)
        retired = [adapters.pop(n) for n in changed | gone if n in adapters]
        adapters.update(build_adapters({n: s.providers[n] for n in changed}))
        self.adapters = adapters
        self.breakers.s = s.breaker
        self.cache.s = s.cache
        self.store.ttl = int(s.queue.result_ttl_s)
        self.files.bound = s.files.redis_max_bytes
        self.settings, self.loaded = s, new
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
        keys = Keys(s.redis_prefix)
        return cls(
            settings=s,
            redis=client,
            keys=keys,
            store=JobStore(client, keys, s.queue.result_ttl_s),
            celery=make_celery(s),
            adapters=build_adapters(s.providers),
            breakers=Breakers(client, keys, s.breaker),
            health=HealthStore(client, keys),
            cache=ResponseCache(client, keys, s.cache),
            limiter=RateLimiter(client, keys),
            quotas=ProviderQuotas(client, keys),
            stats=FleetStats(client, keys),
            loaded=loaded,
            fair=FairShare(client, keys),
            files=file_store(s, keys),
            batches=BatchStore(client, keys, ENDED_TTL_S),
            webhooks=WebhookStore(client, keys),
            provider_stats=ProviderStats(client, keys),
            spend=SpendStore(client, keys),
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

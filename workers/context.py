"""Everything a worker process builds once: settings, Redis, job store, Celery app, adapters.

Built lazily on first use in each process (after gevent has patched, after any fork).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from celery import Celery
from redis import Redis

from shared.breaker import Breakers
from shared.cache import ResponseCache
from shared.celery_app import make_celery
from shared.config import LoadedConfig, load_config
from shared.health import HealthStore
from shared.jobs import JobStore
from shared.keys import Keys
from shared.quota import ProviderQuotas
from shared.ratelimit import RateLimiter
from shared.redis_client import make_redis
from shared.settings import Settings
from shared.stats import FleetStats
from workers.providers.base import Adapter
from workers.providers.registry import build_adapters


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

    @classmethod
    def build(cls, loaded: LoadedConfig) -> WorkerContext:
        s = loaded.settings
        client = make_redis(s.redis_url, max_connections=max(16, s.worker.concurrency // 4))
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
        )


_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    """The process's context, from GATEWAY_CONFIG_FILE and the environment."""
    global _context
    with _lock:
        if _context is None:
            _context = WorkerContext.build(load_config())
        return _context

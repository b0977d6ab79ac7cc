"""What the API process builds once and its blueprints share (``current_services()``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from celery import Celery
from flask import current_app
from redis import Redis

from gateway_api.waiter import CompletionHub
from shared.breaker import Breakers
from shared.cache import ResponseCache
from shared.celery_app import make_celery
from shared.config import LoadedConfig
from shared.health import HealthStore
from shared.idempotency import IdempotencyKeys
from shared.jobs import JobStore
from shared.keys import Keys
from shared.ratelimit import RateLimiter
from shared.redis_client import make_redis
from shared.settings import Settings
from shared.stats import FleetStats


@dataclass
class Services:
    loaded: LoadedConfig
    redis: Redis
    keys: Keys
    store: JobStore
    celery: Celery
    hub: CompletionHub
    idempotency: IdempotencyKeys
    breakers: Breakers  # read-only here: the status pages show breaker state
    health: HealthStore
    limiter: RateLimiter
    cache: ResponseCache
    stats: FleetStats
    started_at: float

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @classmethod
    def build(cls, loaded: LoadedConfig, client: Redis | None = None) -> Services:
        s = loaded.settings
        client = client or make_redis(s.redis_url)
        keys = Keys(s.redis_prefix)
        return cls(
            loaded=loaded,
            redis=client,
            keys=keys,
            store=JobStore(client, keys, s.queue.result_ttl_s),
            celery=make_celery(s),
            hub=CompletionHub(client, keys.done_channel),
            idempotency=IdempotencyKeys(client, keys),
            breakers=Breakers(client, keys, s.breaker),
            health=HealthStore(client, keys),
            limiter=RateLimiter(client, keys),
            cache=ResponseCache(client, keys, s.cache),
            stats=FleetStats(client, keys),
            started_at=time.time(),
        )


def current_services() -> Services:
    services: Services = current_app.extensions["gateway"]
    return services

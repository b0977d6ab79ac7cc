"""What the API process builds once and its blueprints share (``current_services()``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery
from flask import current_app
from redis import Redis

from gateway_api.waiter import CompletionHub
from shared.batch.batch_store import ENDED_TTL_S, BatchStore
from shared.batch.file_store import FileStore, file_store
from shared.celery_app import make_celery
from shared.config.loader import LoadedConfig
from shared.config.settings import Settings
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from shared.keys import Keys
from shared.redis_client import bytes_client, make_redis
from shared.spend.budget import BudgetStore
from shared.spend.usage import SpendStore
from shared.state.breaker import Breakers
from shared.state.cache import ResponseCache
from shared.state.fleet_stats import FleetStats
from shared.state.idempotency import IdempotencyKeys
from shared.state.jobs import JobStore
from shared.state.provider_health import HealthStore
from shared.state.ratelimit import RateLimiter
from shared.webhooks import WebhookStore
from shared.wire.task_message import same_redis


@dataclass
class Services:
    loaded: LoadedConfig
    redis: Redis
    stream_redis: Redis  # for blocking stream reads: one connection per open stream
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
    files: FileStore
    batches: BatchStore
    webhooks: WebhookStore
    budgets: BudgetStore
    spend: SpendStore
    started_at: float
    sources: ConfigSources  # every config layer, to validate and reload
    # The broker is the job store's Redis database: create.lua pushes each job's task message
    # itself (shared/wire/task_message.py) instead of Celery's publisher. Not for a given client
    # (in-process tests): it need not be the server the URLs name.
    inline_publish: bool = False
    watcher: ConfigWatcher | None = None  # live refresh (the served API; not in-process tests)
    listeners: list[Callable[[LoadedConfig], None]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def apply(self, new: LoadedConfig) -> None:
        """Serve ``new`` from now on: swap the settings every request reads, retune the parts
        built from them (connections to Redis and the broker stay: those need a restart)."""
        s = new.settings
        self.breakers.s = s.breaker
        self.cache.s = s.cache
        self.store.ttl = int(s.queue.result_ttl_s)
        self.files.bound = s.files.redis_max_bytes
        self.loaded = new
        for listener in self.listeners:
            listener(new)

    def reload(self) -> LoadedConfig:
        """Pick up the stored config now (after this process changed it)."""
        if self.watcher is not None:
            self.watcher.refresh()
        else:
            self.apply(self.sources.load())
        return self.loaded

    @classmethod
    def build(
        cls, loaded: LoadedConfig, client: Redis | None = None, sources: ConfigSources | None = None
    ) -> Services:
        s = loaded.settings
        given = client is not None
        client = client or make_redis(s.redis_url, autopipeline=True)
        keys = Keys(s.redis_prefix)
        if sources is None:  # built from a given document: that document is the static layer
            sources = ConfigSources(client=client, static=[("config", loaded.document)])
        store = JobStore(client, keys, s.queue.result_ttl_s)
        return cls(
            loaded=loaded,
            redis=client,
            stream_redis=client if given else make_redis(s.redis_url, max_connections=4096),
            keys=keys,
            store=store,
            celery=make_celery(s),
            hub=CompletionHub(client, keys.done_channel, keys.done_channel_of, store.watch),
            idempotency=IdempotencyKeys(client, keys),
            breakers=Breakers(client, keys, s.breaker),
            health=HealthStore(client, keys),
            limiter=RateLimiter(client, keys),
            cache=ResponseCache(client, keys, s.cache),
            stats=FleetStats(client, keys),
            files=file_store(s, keys, bytes_client(client) if given else None),
            batches=BatchStore(client, keys, ENDED_TTL_S),
            webhooks=WebhookStore(client, keys),
            budgets=BudgetStore(client, keys),
            spend=SpendStore(client, keys),
            started_at=time.time(),
            sources=sources,
            inline_publish=not given and same_redis(s.broker_url, s.redis_url),
        )


def current_services() -> Services:
    services: Services = current_app.extensions["gateway"]
    return services

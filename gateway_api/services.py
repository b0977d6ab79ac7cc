"""What the API process builds once and its blueprints share (``current_services()``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery
from flask import current_app
from redis import Redis

from gateway_api.waiter import CompletionHub
from shared.celery_app import enqueue, make_celery
from shared.config.loader import LoadedConfig
from shared.config.settings import Settings
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from shared.keys import Keys
from shared.redis_checks import CachedCheck
from shared.redis_client import bytes_client, make_redis
from shared.wire.task_message import same_redis
from shared.wiring import Stores

# Publishes a job's task: (app, job id, priority). Injected, so an in-process test records
# what would be published instead of needing a broker.
Publish = Callable[[Celery, str, str], None]


@dataclass
class Services:
    loaded: LoadedConfig
    redis: Redis
    raw: Redis  # the same database, answering bytes (file contents)
    stream_redis: Redis  # for blocking stream reads: one connection per open stream
    keys: Keys
    stores: Stores  # replaced whole when the config changes (shared/wiring.py)
    celery: Celery
    hub: CompletionHub
    started_at: float
    sources: ConfigSources  # every config layer, to validate and reload
    publish: Publish = enqueue
    # The broker is the job store's Redis database: create.lua pushes each job's task message
    # itself (shared/wire/task_message.py) instead of Celery's publisher. Not for a given client
    # (in-process tests): it need not be the server the URLs name.
    inline_publish: bool = False
    watcher: ConfigWatcher | None = None  # live refresh (the served API; not in-process tests)
    listeners: list[Callable[[LoadedConfig], None]] = field(default_factory=list)
    # Could the Redis lose accepted jobs (INFO, read every few seconds): the status routes.
    redis_check: CachedCheck = field(default_factory=CachedCheck)
    # Started without client keys and without auth.open (``llm-gateway api`` allows that on
    # loopback only): only such a process, or auth.open, lets requests in without a key.
    open_at_start: bool = False

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def apply(self, new: LoadedConfig) -> None:
        """Serve ``new`` from now on: the stores rebuilt from its settings and swapped in whole
        (connections to Redis and the broker stay: those need a restart)."""
        self.stores = Stores.build(self.redis, self.raw, self.keys, new.settings)
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
        cls,
        loaded: LoadedConfig,
        client: Redis | None = None,
        sources: ConfigSources | None = None,
        publish: Publish = enqueue,
    ) -> Services:
        s = loaded.settings
        given = client is not None
        client = client or make_redis(s.redis_url, autopipeline=True)
        raw = bytes_client(client) if given else make_redis(s.redis_url, decode=False)
        keys = Keys(s.redis_prefix)
        if sources is None:  # built from a given document: that document is the static layer
            sources = ConfigSources(client=client, static=[("config", loaded.document)])
        stores = Stores.build(client, raw, keys, s)
        return cls(
            loaded=loaded,
            redis=client,
            raw=raw,
            stream_redis=client if given else make_redis(s.redis_url, max_connections=4096),
            keys=keys,
            stores=stores,
            celery=make_celery(s),
            hub=CompletionHub(client, keys.done_channel, keys.done_channel_of, stores.jobs.watch),
            started_at=time.time(),
            sources=sources,
            publish=publish,
            inline_publish=not given and same_redis(s.broker_url, s.redis_url),
            open_at_start=not s.auth.keys and not s.auth.open,
        )


def current_services() -> Services:
    services: Services = current_app.extensions["gateway"]
    return services

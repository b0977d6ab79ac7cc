"""The one wiring of the Redis-backed state: what the API (``gateway_api.services``) and the
worker (``workers.context``) both build, the same way, from one client, one key scheme and
one ``Settings``.

``Stores`` is frozen: when the config changes, the process builds a new one from the new
settings and swaps it in whole; no store is changed after it is built. A request or job that
holds the old one finishes with it (the clients are the same; only settings differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from shared.batch.batch_store import ENDED_TTL_S, BatchStore
from shared.batch.file_store import FileStore, file_store
from shared.config.settings import Settings
from shared.keys import Keys
from shared.spend.budget import BudgetStore
from shared.spend.usage import SpendStore
from shared.state.breaker import Breakers
from shared.state.cache import ResponseCache
from shared.state.fair import FairShare
from shared.state.fleet_stats import FleetStats
from shared.state.idempotency import IdempotencyKeys
from shared.state.jobs import JobStore
from shared.state.provider_health import HealthStore
from shared.state.provider_stats import ProviderStats
from shared.state.quota import ProviderQuotas
from shared.state.ratelimit import RateLimiter
from shared.state.worker_beats import WorkerBeats
from shared.webhooks import WebhookStore


@dataclass(frozen=True)
class Stores:
    jobs: JobStore
    breakers: Breakers
    health: HealthStore
    cache: ResponseCache
    limiter: RateLimiter  # an API key's requests, tokens and concurrent jobs
    quotas: ProviderQuotas  # a provider's calls per minute and in flight
    fair: FairShare
    idempotency: IdempotencyKeys
    stats: FleetStats
    provider_stats: ProviderStats
    files: FileStore
    batches: BatchStore
    webhooks: WebhookStore
    budgets: BudgetStore
    spend: SpendStore
    beats: WorkerBeats  # worker heartbeats and their index

    @classmethod
    def build(cls, client: Redis, raw: Redis, keys: Keys, s: Settings) -> Stores:
        """``client`` answers in text, ``raw`` (same server and database) in bytes: file
        contents. Building opens no connection (scripts load on first use)."""
        return cls(
            jobs=JobStore(client, keys, s.queue.result_ttl_s),
            breakers=Breakers(client, keys, s.breaker),
            health=HealthStore(client, keys),
            cache=ResponseCache(client, keys, s.cache),
            limiter=RateLimiter(client, keys),
            quotas=ProviderQuotas(client, keys),
            fair=FairShare(client, keys),
            idempotency=IdempotencyKeys(client, keys, s.queue.result_ttl_s),
            stats=FleetStats(client, keys),
            provider_stats=ProviderStats(client, keys),
            files=file_store(s, keys, raw),
            batches=BatchStore(client, keys, ENDED_TTL_S),
            webhooks=WebhookStore(client, keys),
            budgets=BudgetStore(client, keys),
            spend=SpendStore(client, keys),
            beats=WorkerBeats(client, keys),
        )

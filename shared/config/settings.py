"""Frozen settings objects built once from the validated config (``shared.config.loader``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from shared.spend.prices import Price, bundled


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    type: str  # zai | openai | mock
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_connections: int = 500
    http_shards: int = 0  # 0: choose from max_connections (see workers.providers.pool)
    rpm: int | None = None
    max_concurrent: int | None = None
    health_path: str = "/models"
    breaker_per_model: bool = False  # one breaker per provider+model instead of per provider
    # Ask for usage in streams (stream_options.include_usage); off: stream_options is never
    # sent, for endpoints that refuse the field (streamed answers then count no tokens).
    stream_usage: bool = True


@dataclass(frozen=True)
class Deployment:
    provider: str
    model: str
    larger_context: bool = False  # a context-window error may fall back to this one
    price: Price | None = None  # configured, else the bundled table's (shared/spend/prices.py)
    max_output_tokens: int | None = None  # likewise: bounds a request without max_tokens

    @staticmethod
    def of(
        provider: str,
        model: str,
        larger_context: bool = False,
        price: Price | None = None,
        max_output_tokens: int | None = None,
    ) -> Deployment:
        """A deployment with what config left out filled from the bundled table."""
        facts = bundled(model)
        return Deployment(
            provider,
            model,
            larger_context,
            price or (facts.price if facts else None),
            max_output_tokens or (facts.max_output_tokens if facts else None),
        )


@dataclass(frozen=True)
class Budget:
    """An API key's spend limit; periods are UTC (day, month) or the key's lifetime (total)."""

    usd: float
    period: str = "month"  # day | month | total

    @property
    def micro(self) -> int:
        return round(self.usd * 1_000_000)


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str = field(repr=False)
    previous_secrets: tuple[str, ...] = field(default=(), repr=False)
    events: tuple[str, ...] = ()  # empty: every event

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


@dataclass(frozen=True)
class ApiKey:
    id: str
    key_sha256: str
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    weight: float = 1.0  # fair share within a priority (shared/state/fair.py)
    webhooks: tuple[WebhookEndpoint, ...] = ()
    budget: Budget | None = None


@dataclass(frozen=True)
class AuthSettings:
    open: bool = False
    keys: tuple[ApiKey, ...] = ()
    admin_keys: tuple[ApiKey, ...] = ()


@dataclass(frozen=True)
class LimitsSettings:
    max_body_bytes: int = 10 * 1024 * 1024
    max_messages: int = 2048
    max_content_chars: int = 4 * 1024 * 1024
    max_n: int = 128
    max_tokens: int = 1_000_000
    default_rpm: int | None = None
    default_tpm: int | None = None
    default_max_concurrent: int | None = None


@dataclass(frozen=True)
class QueueSettings:
    deadline_s: float = 300
    max_deadline_s: float = 3600
    result_ttl_s: int = 86400
    # A finished synchronous job (its client already has the answer) keeps its full record
    # this long, then a slim one for the rest of result_ttl_s (workers/slimming.py).
    sync_result_ttl_s: int = 600
    max_depth: int = 100000
    max_age_s: float = 600
    max_deliveries: int = 5
    # A job still queued this long after its publish is published again (the broker may have
    # lost the message); duplicates are harmless: the lease and the terminal check skip them.
    # Below max_age_s (a lost message would otherwise hold its priority's queue full) and
    # deadline_s (the job would expire first): validated (shared/config/schema.py).
    redeliver_after_s: float = 120
    # Fair share: an API key's jobs of one priority in the broker at once, x its weight
    # (shared/state/fair.py); 0 turns fair share off.
    fair_window: int = 64


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 500
    shutdown_grace_s: float = 8
    lease_s: float = 15  # a lost worker's job is taken over after at most lease_s + reaper interval
    reaper_interval_s: float = 5
    heartbeat_s: float = 10
    # Share of the concurrency reserved for gateway.interactive (its own process): a batch
    # backlog cannot delay interactive jobs. 0: one process serves every queue.
    interactive_share: float = 0.1


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 3
    max_total_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30


@dataclass(frozen=True)
class BreakerSettings:
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    min_calls: int = 20
    window_s: float = 60
    open_s: float = 60
    probe_timeout_s: float = 30


@dataclass(frozen=True)
class HealthSettings:
    interval_s: float = 30
    timeout_s: float = 5


@dataclass(frozen=True)
class FallbackSettings:
    order: tuple[str, ...] = ("alternative_provider", "cached_response")
    degraded_answer: str | None = None
    by_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def order_for(self, model: str) -> tuple[str, ...]:
        return self.by_model.get(model, self.order)


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = True
    ttl_s: int = 3600
    max_entries: int = 10000
    max_bytes: int = 104857600
    deterministic_only: bool = True
    stale_ttl_s: int = 86400


@dataclass(frozen=True)
class StreamingSettings:
    ttl_s: int = 3600  # a stream's entries are kept this long after the last one
    cancel_on_disconnect: bool = False
    # An SSE comment this often while a stream waits (for its first chunk or the next one):
    # proxies close connections idle for 60 s (AWS ALB, nginx).
    keepalive_s: float = 15.0


@dataclass(frozen=True)
class S3Settings:
    """files.store: s3. Credentials come from the standard AWS chain (environment, profile,
    instance role), never from the config document."""

    bucket: str | None = None
    prefix: str = "llm-gateway/files/"
    endpoint_url: str | None = None  # any S3-compatible store (MinIO, R2, moto...)
    region: str | None = None


@dataclass(frozen=True)
class FilesSettings:
    # OpenAI's limits: 200 MB a file (a batch file: up to 50,000 lines and 200 MB).
    store: str = "redis"  # where contents live: "redis" (bounded) or "s3"
    max_bytes: int = 209715200  # one file
    redis_max_bytes: int = 1073741824  # every file's content in Redis together
    # One API key's files together (uploads and batch outputs, whichever store), so one key
    # cannot fill the store that every key's uploads and batch outputs share.
    max_bytes_per_key: int = 1073741824
    s3: S3Settings = S3Settings()


@dataclass(frozen=True)
class BatchesSettings:
    max_lines: int = 50000  # a batch input file (purpose "batch")
    max_bytes: int = 209715200
    # The completion window in seconds, instead of the one the batch asked for ("24h"):
    # operators shorten it to bound how long a batch may run, tests to see expiry.
    window_s: float | None = None
    # Lines of a batch made into jobs ahead of those finished; also the most lines of one
    # key's batches held in its backlog at once, whatever its number of batches.
    expand_ahead: int = 1000
    # Batches of one API key not yet ended; one more is refused (429 too_many_active_batches).
    max_active_per_key: int = 100
    max_line_errors: int = 1000  # invalid lines listed in a failed batch's errors


@dataclass(frozen=True)
class WebhooksSettings:
    allow_private: bool = False  # deliver to private and loopback addresses (tests, intranets)
    timeout_s: float = 15
    max_attempts: int = 8
    backoff_s: float = 5  # doubled after each failed attempt, up to max_backoff_s
    max_backoff_s: float = 3600
    keep_s: int = 604800  # the delivery log's keeping time


@dataclass(frozen=True)
class HttpSource:
    """A config layer fetched over HTTP (``refresh.http_source``): a JSON object, with the
    token as a bearer token."""

    url: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RefreshSettings:
    interval_s: float = 10  # every process reloads its config this often (and at once on a
    # new Redis version)
    http_source: HttpSource | None = None


@dataclass(frozen=True)
class MetricsSettings:
    token: str | None = field(default=None, repr=False)  # a bearer token /metrics requires


@dataclass(frozen=True)
class CorsSettings:
    # Browsers may call /v1/* from these origins ("*": any); empty: CORS off.
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigSettings:
    # The environment variables the Redis layer and the HTTP source may name (``${VAR}``), as
    # glob patterns, and only in secret fields (api_key, token, secret): an admin key must not
    # read the fleet's environment back. Taken from the file and the environment only.
    env_allow: tuple[str, ...] = ("*_API_KEY", "*_TOKEN", "*_SECRET")


@dataclass(frozen=True)
class Settings:
    providers: Mapping[str, ProviderSettings]
    models: Mapping[str, tuple[Deployment, ...]]
    default_model: str | None
    auth: AuthSettings
    limits: LimitsSettings
    queue: QueueSettings
    worker: WorkerSettings
    retry: RetrySettings
    breaker: BreakerSettings
    health: HealthSettings
    fallbacks: FallbackSettings
    cache: CacheSettings
    streaming: StreamingSettings
    files: FilesSettings
    batches: BatchesSettings
    webhooks: WebhooksSettings
    refresh: RefreshSettings
    metrics: MetricsSettings
    cors: CorsSettings
    redis_url: str
    redis_prefix: str
    # Run on a Redis whose maxmemory-policy evicts keys (it may drop accepted jobs); without
    # it, the API and the worker refuse to start on one (shared/redis_checks.py).
    redis_allow_eviction: bool
    broker_url: str
    version: str
    config: ConfigSettings = ConfigSettings()

    @property
    def keys_required(self) -> bool:
        return bool(self.auth.keys)

    def key(self, owner: str) -> ApiKey | None:
        for key in self.auth.keys:
            if key.id == owner:
                return key
        return None

    def weight_of(self, owner: str) -> float:
        """An API key's fair-share weight (1 for a key not in config, e.g. an open gateway)."""
        key = self.key(owner)
        return key.weight if key else 1.0


def default_of(cls: type[Any], name: str) -> Any:
    """A settings field's default: the one place a default is written (the config schema's
    ``load_default`` and the defaults layer read it from here)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


def section_defaults(cls: type[Any]) -> dict[str, Any]:
    """A settings section's defaults as a config document section (tuples as lists, nested
    sections as maps)."""

    def plain(value: Any) -> Any:
        if is_dataclass(value) and not isinstance(value, type):
            return section_defaults(type(value))
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, Mapping):
            return dict(value)
        return value

    return {f.name: plain(default_of(cls, f.name)) for f in fields(cls)}

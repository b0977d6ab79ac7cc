"""The defaults layer: the bottom of every merge, and the well-known providers the original
design's environment names create."""

from __future__ import annotations

from typing import Any

from shared.config.settings import (
    AuthSettings,
    BatchesSettings,
    BreakerSettings,
    CacheSettings,
    ConfigSettings,
    CorsSettings,
    FallbackSettings,
    FilesSettings,
    HealthSettings,
    LimitsSettings,
    MetricsSettings,
    QueueSettings,
    RefreshSettings,
    RetrySettings,
    StreamingSettings,
    WebhooksSettings,
    WorkerSettings,
    section_defaults,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Each section's defaults are its settings dataclass's (shared/config/settings.py): written
# once, there, beside what each value means.
DEFAULTS: dict[str, Any] = {
    "providers": {},
    "models": {},
    "default_model": None,
    "auth": section_defaults(AuthSettings),
    "limits": section_defaults(LimitsSettings),
    "retry": section_defaults(RetrySettings),
    "breaker": section_defaults(BreakerSettings),
    "fallbacks": section_defaults(FallbackSettings),
    "cache": section_defaults(CacheSettings),
    "queue": section_defaults(QueueSettings),
    "worker": section_defaults(WorkerSettings),
    "health": section_defaults(HealthSettings),
    "refresh": section_defaults(RefreshSettings),
    "metrics": section_defaults(MetricsSettings),
    "cors": section_defaults(CorsSettings),
    "streaming": section_defaults(StreamingSettings),
    "files": section_defaults(FilesSettings),
    "batches": section_defaults(BatchesSettings),
    "webhooks": section_defaults(WebhooksSettings),
    "config": section_defaults(ConfigSettings),
    "redis": {"url": DEFAULT_REDIS_URL, "prefix": "gw", "allow_eviction": False},
    "broker": {"url": None},  # none: the Redis above
}

# Well-known providers the original design's environment names create.
ENV_PROVIDERS: dict[str, dict[str, Any]] = {
    "z-ai": {"type": "zai", "base_url": "https://api.z.ai/api/paas/v4"},
    "openai": {"type": "openai", "base_url": "https://api.openai.com/v1"},
    "litellm-proxy": {"type": "openai"},
}
# Models offered when the config names none, by provider.
ENV_MODELS: dict[str, list[str]] = {
    "z-ai": ["glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"],
    "openai": ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"],
}

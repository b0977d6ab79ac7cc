"""The defaults layer: the bottom of every merge, and the well-known providers the original
design's environment names create."""

from __future__ import annotations

from typing import Any

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

DEFAULTS: dict[str, Any] = {
    "providers": {},
    "models": {},
    "default_model": None,
    "auth": {"open": False, "keys": [], "admin_keys": []},
    "limits": {
        "max_body_bytes": 10 * 1024 * 1024,
        "max_messages": 2048,
        "max_content_chars": 4 * 1024 * 1024,
        "max_n": 128,
        "max_tokens": 1_000_000,
        "default_rpm": None,
        "default_tpm": None,
        "default_max_concurrent": None,
    },
    "retry": {"max_attempts": 3, "max_total_attempts": 6, "base_delay_s": 1.0, "max_delay_s": 30},
    "breaker": {
        "consecutive_failures": 5,
        "failure_rate": 0.5,
        "min_calls": 20,
        "window_s": 60,
        "open_s": 60,
        "probe_timeout_s": 30,
    },
    "fallbacks": {
        "order": ["alternative_provider", "cached_response"],
        "degraded_answer": None,
        "by_model": {},
    },
    "cache": {
        "enabled": True,
        "ttl_s": 3600,
        "max_entries": 10000,
        "max_bytes": 104857600,
        "deterministic_only": True,
        "stale_ttl_s": 86400,
    },
    "queue": {
        "deadline_s": 300,
        "max_deadline_s": 3600,
        "result_ttl_s": 86400,
        "max_depth": 100000,
        "max_age_s": 600,
        "max_deliveries": 5,
        "redeliver_after_s": 900,
        "fair_window": 64,
    },
    "worker": {
        "concurrency": 500,
        "shutdown_grace_s": 8,
        "lease_s": 15,
        "reaper_interval_s": 5,
        "heartbeat_s": 10,
        "interactive_share": 0.1,
    },
    "health": {"interval_s": 30, "timeout_s": 5},
    "refresh": {"interval_s": 10, "http_source": None},
    "metrics": {"token": None},
    "cors": {"allowed_origins": []},
    "streaming": {"ttl_s": 3600, "cancel_on_disconnect": False, "keepalive_s": 15},
    # OpenAI's limits: 200 MB a file; a batch file up to 50,000 lines and 200 MB.
    "files": {
        "store": "redis",
        "max_bytes": 209715200,
        "redis_max_bytes": 1073741824,
        # files.store: s3. Credentials come from the standard AWS chain (environment, profile,
        # instance role), never from this document.
        "s3": {
            "bucket": None,
            "prefix": "llm-gateway/files/",
            "endpoint_url": None,
            "region": None,
        },
    },
    "batches": {
        "max_lines": 50000,
        "max_bytes": 209715200,
        "window_s": None,
        "expand_ahead": 1000,
        "max_line_errors": 1000,
    },
    "webhooks": {
        "allow_private": False,
        "timeout_s": 15,
        "max_attempts": 8,
        "backoff_s": 5,
        "max_backoff_s": 3600,
        "keep_s": 604800,
    },
    "redis": {"url": DEFAULT_REDIS_URL, "prefix": "gw"},
    "broker": {"url": None},
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

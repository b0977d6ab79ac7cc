"""Configuration: layers merged deeply, validated as a whole, turned into frozen Settings.

Layers, later overriding earlier (maps merged deeply, lists replaced whole):
defaults; the file (``--config`` or ``GATEWAY_CONFIG_FILE``; YAML, JSON or TOML, with
``${VAR}`` and ``${VAR:-default}``); the original design's environment names
(``ZAI_API_KEY``, ``OPENAI_API_KEY``, ``LITELLM_PROXY_URL``, ``REDIS_URL``,
``CELERY_BROKER_URL``...); ``GATEWAY__SECTION__KEY`` variables; the ``GATEWAY_CONFIG`` JSON
document; the Redis layer and the HTTP source (``shared.live_config``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from shared.config_schema import ConfigSchema, flatten_errors
from shared.errors import ConfigError
from shared.settings import (
    ApiKey,
    AuthSettings,
    BatchesSettings,
    BreakerSettings,
    Budget,
    CacheSettings,
    Deployment,
    FallbackSettings,
    FilesSettings,
    HealthSettings,
    LimitsSettings,
    ProviderSettings,
    QueueSettings,
    RetrySettings,
    S3Settings,
    Settings,
    StreamingSettings,
    WebhookEndpoint,
    WebhooksSettings,
    WorkerSettings,
)
from shared.spend.prices import Price

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
_ENV_PROVIDERS: dict[str, dict[str, Any]] = {
    "z-ai": {"type": "zai", "base_url": "https://api.z.ai/api/paas/v4"},
    "openai": {"type": "openai", "base_url": "https://api.openai.com/v1"},
    "litellm-proxy": {"type": "openai"},
}
# Models offered when the config names none, by provider.
_ENV_MODELS: dict[str, list[str]] = {
    "z-ai": ["glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"],
    "openai": ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"],
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_FIELDS = frozenset({"api_key", "token", "secret", "previous_secrets"})
REDACTED = "***"


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    document: dict[str, Any]  # merged and validated
    sources: dict[str, str]  # dotted path -> the layer that set it
    redis_version: int = 0  # the Redis layer's version in force (0: none)


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def substitute_env(value: Any, env: Mapping[str, str]) -> Any:
    """Resolve ``${VAR}`` / ``${VAR:-default}`` in every string; a lone unset ``${VAR}`` is null."""
    if isinstance(value, dict):
        return {k: substitute_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = _VAR.fullmatch(value)
    if whole and whole.group(2) is None and not env.get(whole.group(1)):
        return None
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError({"file": [f"cannot read {p}: {exc.strerror}"]}) from exc
    try:
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError({"file": [f"cannot parse {p}: {exc}"]}) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError({"file": [f"{p} must hold a mapping at the top level"]})
    return data


def env_named_layer(env: Mapping[str, str], below: Mapping[str, Any]) -> dict[str, Any]:
    """The original design's environment names, mapped onto config paths."""
    layer: dict[str, Any] = {}
    providers: dict[str, Any] = {}
    known = below.get("providers") or {}

    def provider(name: str, **values: Any) -> None:
        entry = {} if name in known else dict(_ENV_PROVIDERS[name])
        entry.update({k: v for k, v in values.items() if v})
        providers[name] = entry

    if env.get("ZAI_API_KEY"):
        provider("z-ai", api_key=env["ZAI_API_KEY"], base_url=env.get("ZAI_BASE_URL"))
    if env.get("OPENAI_API_KEY"):
        provider("openai", api_key=env["OPENAI_API_KEY"], base_url=env.get("OPENAI_BASE_URL"))
    if env.get("LITELLM_PROXY_URL"):
        provider(
            "litellm-proxy",
            base_url=env["LITELLM_PROXY_URL"],
            api_key=env.get("LITELLM_PROXY_API_KEY"),
        )
    if providers:
        layer["providers"] = providers
    if env.get("REDIS_URL"):
        layer["redis"] = {"url": env["REDIS_URL"]}
    if env.get("CELERY_BROKER_URL"):
        layer["broker"] = {"url": env["CELERY_BROKER_URL"]}
    return layer


def _parse_scalar(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_override_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``GATEWAY__QUEUE__DEADLINE_S=30`` -> {"queue": {"deadline_s": 30}}; values parsed as JSON."""
    layer: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("GATEWAY__"):
            continue
        path = [part.lower() for part in name[len("GATEWAY__") :].split("__") if part]
        if not path:
            continue
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_scalar(raw)
    return layer


def env_json_layer(env: Mapping[str, str]) -> dict[str, Any]:
    raw = env.get("GATEWAY_CONFIG")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError({"GATEWAY_CONFIG": [f"invalid JSON: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise ConfigError({"GATEWAY_CONFIG": ["must be a JSON object"]})
    return data


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def default_models(doc: dict[str, Any]) -> None:
    """With no models configured, offer each provider's well-known models (mock: every name)."""
    if doc.get("models"):
        return
    models: dict[str, list[dict[str, str]]] = {}
    for name, prov in (doc.get("providers") or {}).items():
        for model in _ENV_MODELS.get(name, []):
            models.setdefault(model, []).append({"provider": name, "model": model})
        if isinstance(prov, dict) and prov.get("type") == "mock":
            models.setdefault("mock-model", []).append({"provider": name, "model": "mock-model"})
    doc["models"] = models
    if not doc.get("default_model") and models:
        doc["default_model"] = next(iter(models))


def static_layers(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """defaults, the file, the environment's three layers: what a process knows on its own."""
    layers: list[tuple[str, dict[str, Any]]] = [("default", DEFAULTS)]
    if path:
        layers.append(("file", substitute_env(read_file(path), env)))
    merged_so_far: dict[str, Any] = {}
    for _, layer in layers:
        merged_so_far = deep_merge(merged_so_far, layer)
    layers.append(("env", env_named_layer(env, merged_so_far)))
    layers.append(("env:GATEWAY__", env_override_layer(env)))
    layers.append(("env:GATEWAY_CONFIG", env_json_layer(env)))
    return layers


def merge_layers(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The deep merge of ``layers`` in order, and the layer that set each dotted path."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        merged = deep_merge(merged, layer)
        for dotted in _flatten(layer):
            sources[dotted] = name
    return merged, sources


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    extra_layers: list[tuple[str, dict[str, Any]]] | None = None,
) -> LoadedConfig:
    """Merge every layer, validate the result, build Settings. Raises ConfigError.

    ``extra_layers`` (the Redis layer, the HTTP source: ``shared.live_config``) go above the
    environment's; ``overrides`` above everything."""
    env = os.environ if env is None else env
    path = path or env.get("GATEWAY_CONFIG_FILE") or None
    layers = static_layers(path, env)
    layers += extra_layers or []
    if overrides:
        layers.append(("override", dict(overrides)))
    merged, sources = merge_layers(layers)
    default_models(merged)
    return build(merged, sources)


def validate_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = ConfigSchema().load(dict(doc))
    except ValidationError as exc:
        raise ConfigError(flatten_errors(exc.messages)) from exc
    return result


def build(doc: dict[str, Any], sources: dict[str, str] | None = None) -> LoadedConfig:
    valid = validate_document(doc)
    return LoadedConfig(settings=to_settings(valid), document=valid, sources=sources or {})


def _key(k: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        id=k["id"],
        key_sha256=k["key_sha256"],
        rpm=k.get("rpm"),
        tpm=k.get("tpm"),
        max_concurrent=k.get("max_concurrent"),
        weight=float(k.get("weight") or 1.0),
        webhooks=tuple(
            WebhookEndpoint(
                url=w["url"],
                secret=w["secret"],
                previous_secrets=tuple(w.get("previous_secrets") or ()),
                events=tuple(w.get("events") or ()),
            )
            for w in k.get("webhooks") or ()
        ),
        budget=Budget(**k["budget"]) if k.get("budget") else None,
    )


def config_version(doc: Mapping[str, Any]) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def to_settings(doc: Mapping[str, Any]) -> Settings:
    providers = {
        name: ProviderSettings(name=name, **{k: v for k, v in p.items()})
        for name, p in doc["providers"].items()
    }
    models = {
        name: tuple(
            Deployment.of(
                provider=d["provider"],
                model=d["model"],
                larger_context=d.get("larger_context", False),
                price=Price(**d["price"]) if d.get("price") else None,
                max_output_tokens=d.get("max_output_tokens"),
            )
            for d in deps
        )
        for name, deps in doc["models"].items()
    }
    auth = doc["auth"]
    redis_url = doc["redis"]["url"]
    return Settings(
        providers=providers,
        models=models,
        default_model=doc.get("default_model"),
        auth=AuthSettings(
            open=auth["open"],
            keys=tuple(_key(k) for k in auth["keys"]),
            admin_keys=tuple(_key(k) for k in auth["admin_keys"]),
        ),
        limits=LimitsSettings(**doc["limits"]),
        queue=QueueSettings(**doc["queue"]),
        worker=WorkerSettings(**doc["worker"]),
        retry=RetrySettings(**doc["retry"]),
        breaker=BreakerSettings(**doc["breaker"]),
        health=HealthSettings(**doc["health"]),
        fallbacks=FallbackSettings(
            order=tuple(doc["fallbacks"]["order"]),
            degraded_answer=doc["fallbacks"].get("degraded_answer"),
            by_model={m: tuple(o) for m, o in doc["fallbacks"].get("by_model", {}).items()},
        ),
        cache=CacheSettings(**doc["cache"]),
        streaming=StreamingSettings(**doc["streaming"]),
        files=FilesSettings(
            store=doc["files"]["store"],
            max_bytes=doc["files"]["max_bytes"],
            redis_max_bytes=doc["files"]["redis_max_bytes"],
            s3=S3Settings(**doc["files"]["s3"]),
        ),
        batches=BatchesSettings(**doc["batches"]),
        webhooks=WebhooksSettings(**doc["webhooks"]),
        redis_url=redis_url,
        redis_prefix=doc["redis"]["prefix"],
        broker_url=doc["broker"].get("url") or redis_url,
        version=config_version(doc),
        raw=doc,
    )


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]+)@")


def redact(doc: Any) -> Any:
    """A copy with every secret replaced by ``***`` (provider keys, tokens, URL passwords)."""
    if isinstance(doc, Mapping):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if key in SECRET_FIELDS and value:
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(doc, list):
        return [redact(v) for v in doc]
    if isinstance(doc, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", doc)
    return doc


def value_sources(loaded: LoadedConfig) -> dict[str, str]:
    """Each dotted path of the merged config and the layer its value came from."""
    out: dict[str, str] = {}
    for path in _flatten(loaded.document):
        parts = path.split(".")
        while parts and ".".join(parts) not in loaded.sources:
            parts.pop()
        out[path] = loaded.sources.get(".".join(parts), "default") if parts else "default"
    return out


def describe(loaded: LoadedConfig) -> dict[str, Any]:
    """What ``GET /admin/config`` and ``config show`` print: redacted, with sources."""
    return {
        "version": loaded.settings.version,
        "redis_version": loaded.redis_version,
        "config": redact(loaded.document),
        "sources": value_sources(loaded),
    }

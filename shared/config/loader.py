"""Merge every layer, validate the whole, build the frozen Settings."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from shared.config.layers import default_models, merge_layers, static_layers
from shared.config.schema import ConfigSchema, flatten_errors
from shared.config.settings import (
    ApiKey,
    AuthSettings,
    BatchesSettings,
    BreakerSettings,
    Budget,
    CacheSettings,
    ConfigSettings,
    CorsSettings,
    Deployment,
    FallbackSettings,
    FilesSettings,
    HealthSettings,
    HttpSource,
    LimitsSettings,
    MetricsSettings,
    ProviderSettings,
    QueueSettings,
    RefreshSettings,
    RetrySettings,
    S3Settings,
    Settings,
    StreamingSettings,
    WebhookEndpoint,
    WebhooksSettings,
    WorkerSettings,
)
from shared.errors import ConfigError
from shared.spend.prices import Price


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    document: dict[str, Any]  # merged and validated
    sources: dict[str, str]  # dotted path -> the layer that set it
    redis_version: int = 0  # the Redis layer's version in force (0: none)


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    extra_layers: list[tuple[str, dict[str, Any]]] | None = None,
) -> LoadedConfig:
    """Merge every layer, validate the result, build Settings. Raises ConfigError.

    ``extra_layers`` (the Redis layer, the HTTP source, their ``${VAR}`` already resolved:
    ``shared.config.sources``) go above the environment's; ``overrides`` above everything."""
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
            max_bytes_per_key=doc["files"]["max_bytes_per_key"],
            s3=S3Settings(**doc["files"]["s3"]),
        ),
        batches=BatchesSettings(**doc["batches"]),
        webhooks=WebhooksSettings(**doc["webhooks"]),
        refresh=RefreshSettings(
            interval_s=doc["refresh"]["interval_s"],
            http_source=HttpSource(**source)
            if (source := doc["refresh"].get("http_source"))
            else None,
        ),
        metrics=MetricsSettings(token=doc["metrics"].get("token")),
        cors=CorsSettings(allowed_origins=tuple(doc["cors"]["allowed_origins"])),
        redis_url=redis_url,
        redis_prefix=doc["redis"]["prefix"],
        redis_allow_eviction=doc["redis"]["allow_eviction"],
        broker_url=doc["broker"].get("url") or redis_url,
        version=config_version(doc),
        config=ConfigSettings(env_allow=tuple(doc["config"]["env_allow"])),
    )

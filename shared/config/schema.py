"""Marshmallow schema of the whole configuration document (docs/architecture.md "Configuration")."""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from shared.config.settings import (
    ApiKey,
    AuthSettings,
    Budget,
    Deployment,
    ProviderSettings,
    default_of,
)

# The default of a field a list item may leave out: its settings dataclass's (one source).
_d = default_of
_URL = validate.URL(require_tld=False, schemes={"http", "https"})
_POSITIVE = validate.Range(min=1)


# Operators' own annotations: a key with this prefix is allowed anywhere and ignored.
ANNOTATION_PREFIX = "x-"


class _Strict(Schema):
    """Refuses unknown fields, naming the one probably meant: a typo (``rmp: 5`` for ``rpm``)
    must not silently run with the default (here: no limit at all)."""

    class Meta:
        unknown = EXCLUDE  # reported by _no_unknown_fields below, with a suggestion

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _no_unknown_fields(self, data: Any, original: Any, **_: Any) -> None:
        if not isinstance(original, dict):
            return
        known = sorted(self.fields)
        errors: dict[str, list[str]] = {}
        for name in original:
            if not isinstance(name, str) or name in self.fields:
                continue
            if name.startswith(ANNOTATION_PREFIX):
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors[name] = [
                f"unknown field{hint} (prefix a key with {ANNOTATION_PREFIX!r} for your own notes)"
            ]
        if errors:
            raise ValidationError(errors)


class ProviderSchema(_Strict):
    type = fields.Str(required=True, validate=validate.OneOf(["zai", "openai", "mock"]))
    base_url = fields.Str(required=True, validate=_URL)
    api_key = fields.Str(load_default=None, allow_none=True)
    timeout_s = fields.Float(
        load_default=_d(ProviderSettings, "timeout_s"), validate=validate.Range(min=1, max=300)
    )
    max_connections = fields.Int(
        load_default=_d(ProviderSettings, "max_connections"),
        validate=validate.Range(min=1, max=10000),
    )
    http_shards = fields.Int(
        load_default=_d(ProviderSettings, "http_shards"), validate=validate.Range(min=0, max=1000)
    )
    rpm = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)
    max_concurrent = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)
    health_path = fields.Str(load_default=_d(ProviderSettings, "health_path"))
    breaker_per_model = fields.Bool(load_default=_d(ProviderSettings, "breaker_per_model"))
    stream_usage = fields.Bool(load_default=_d(ProviderSettings, "stream_usage"))


class PriceSchema(_Strict):
    """USD per million tokens (shared/spend/prices.py)."""

    input_per_mtok = fields.Float(required=True, validate=validate.Range(min=0))
    output_per_mtok = fields.Float(required=True, validate=validate.Range(min=0))
    cached_input_per_mtok = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0)
    )


class DeploymentSchema(_Strict):
    provider = fields.Str(required=True)
    model = fields.Str(required=True, validate=validate.Length(min=1))
    # A context-window error falls back only to deployments marked larger_context.
    larger_context = fields.Bool(load_default=_d(Deployment, "larger_context"))
    price = fields.Nested(PriceSchema, load_default=None, allow_none=True)
    max_output_tokens = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)


class BudgetSchema(_Strict):
    usd = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    period = fields.Str(
        load_default=_d(Budget, "period"), validate=validate.OneOf(("day", "month", "total"))
    )


WEBHOOK_EVENTS = (
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "job.expired",
)


def _whsec(value: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 to 64 random bytes."""
    import base64
    import binascii

    if not value.startswith("whsec_"):
        raise ValidationError("must start with whsec_ (Standard Webhooks)")
    try:
        raw = base64.b64decode(value[6:], validate=True)
    except binascii.Error:
        raise ValidationError("must be whsec_ followed by base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValidationError("must hold 24 to 64 bytes (whsec_ + base64)")


class WebhookEndpointSchema(_Strict):
    url = fields.Str(
        required=True, validate=validate.URL(schemes={"http", "https"}, require_tld=False)
    )
    secret = fields.Str(required=True, validate=_whsec)
    # Still signed with during a rotation: receivers may check any of the signatures.
    previous_secrets = fields.List(fields.Str(validate=_whsec), load_default=list)
    events = fields.List(fields.Str(validate=validate.OneOf(WEBHOOK_EVENTS)), load_default=list)


class KeySchema(_Strict):
    id = fields.Str(required=True, validate=validate.Length(min=1, max=128))
    key_sha256 = fields.Str(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}$", error="must be 64 lowercase hex characters"),
    )
    rpm = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)
    tpm = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)
    max_concurrent = fields.Int(load_default=None, allow_none=True, validate=_POSITIVE)
    weight = fields.Float(
        load_default=_d(ApiKey, "weight"),
        validate=validate.Range(min=0, min_inclusive=False, max=1000),
    )
    webhooks = fields.List(fields.Nested(WebhookEndpointSchema), load_default=list)
    budget = fields.Nested(BudgetSchema, load_default=None, allow_none=True)


class AuthSchema(_Strict):
    open = fields.Bool(load_default=_d(AuthSettings, "open"))
    keys = fields.List(fields.Nested(KeySchema), load_default=list)
    admin_keys = fields.List(fields.Nested(KeySchema), load_default=list)


class LimitsSchema(_Strict):
    max_body_bytes = fields.Int(required=True, validate=validate.Range(min=1024))
    max_messages = fields.Int(required=True, validate=_POSITIVE)
    max_content_chars = fields.Int(required=True, validate=_POSITIVE)
    max_n = fields.Int(required=True, validate=_POSITIVE)
    max_tokens = fields.Int(required=True, validate=_POSITIVE)
    default_rpm = fields.Int(allow_none=True, validate=_POSITIVE)
    default_tpm = fields.Int(allow_none=True, validate=_POSITIVE)
    default_max_concurrent = fields.Int(allow_none=True, validate=_POSITIVE)


class RetrySchema(_Strict):
    max_attempts = fields.Int(required=True, validate=validate.Range(min=1, max=20))
    max_total_attempts = fields.Int(required=True, validate=validate.Range(min=1, max=50))
    base_delay_s = fields.Float(required=True, validate=validate.Range(min=0))
    max_delay_s = fields.Float(required=True, validate=validate.Range(min=0))


class BreakerSchema(_Strict):
    consecutive_failures = fields.Int(required=True, validate=_POSITIVE)
    failure_rate = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    min_calls = fields.Int(required=True, validate=_POSITIVE)
    window_s = fields.Float(required=True, validate=validate.Range(min=1))
    open_s = fields.Float(required=True, validate=validate.Range(min=0.1))
    probe_timeout_s = fields.Float(required=True, validate=validate.Range(min=0.1))


_FALLBACK_KIND = fields.Str(
    validate=validate.OneOf(["alternative_provider", "cached_response", "degraded"])
)


class FallbacksSchema(_Strict):
    order = fields.List(_FALLBACK_KIND, required=True)
    degraded_answer = fields.Str(allow_none=True)
    # Per public model: its own order, replacing ``order`` for that model.
    by_model = fields.Dict(keys=fields.Str(), values=fields.List(_FALLBACK_KIND), load_default=dict)


class CacheSchema(_Strict):
    enabled = fields.Bool(required=True)
    ttl_s = fields.Int(required=True, validate=_POSITIVE)
    max_entries = fields.Int(required=True, validate=_POSITIVE)
    max_bytes = fields.Int(required=True, validate=_POSITIVE)
    deterministic_only = fields.Bool(required=True)
    stale_ttl_s = fields.Int(required=True, validate=_POSITIVE)


class QueueSchema(_Strict):
    deadline_s = fields.Float(required=True, validate=validate.Range(min=1))
    max_deadline_s = fields.Float(required=True, validate=validate.Range(min=1))
    result_ttl_s = fields.Int(required=True, validate=validate.Range(min=60))
    sync_result_ttl_s = fields.Int(required=True, validate=validate.Range(min=1))
    max_depth = fields.Int(required=True, validate=_POSITIVE)
    max_age_s = fields.Float(required=True, validate=validate.Range(min=1))
    max_deliveries = fields.Int(required=True, validate=validate.Range(min=1, max=100))
    # Below deadline_s (validated), so below 1 s only where deadlines are that short (tests).
    redeliver_after_s = fields.Float(required=True, validate=validate.Range(min=0.1))
    fair_window = fields.Int(required=True, validate=validate.Range(min=0, max=100_000))

    @validates_schema
    def _deadline_within_max(self, data: dict[str, Any], **_: Any) -> None:
        if data["deadline_s"] > data["max_deadline_s"]:
            raise ValidationError("must not exceed max_deadline_s", "deadline_s")

    @validates_schema
    def _times_agree(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        redeliver = data["redeliver_after_s"]
        # A job whose broker message was lost waits redeliver_after_s to be published again.
        if redeliver >= data["max_age_s"]:
            errors.setdefault("redeliver_after_s", []).append(
                f"must be below max_age_s ({data['max_age_s']:g}): until a job whose broker "
                "message was lost is published again, its priority's queue answers 503 queue_full"
            )
        if redeliver >= data["deadline_s"]:
            errors.setdefault("redeliver_after_s", []).append(
                f"must be below deadline_s ({data['deadline_s']:g}): a job whose broker message "
                "was lost would expire before it is published again"
            )
        if data["sync_result_ttl_s"] > data["result_ttl_s"]:
            errors["sync_result_ttl_s"] = [
                f"must not exceed result_ttl_s ({data['result_ttl_s']}): it is how long of a "
                "synchronous job's keeping time its full record lasts"
            ]
        if data["result_ttl_s"] < data["max_deadline_s"]:
            errors["result_ttl_s"] = [
                f"must be at least max_deadline_s ({data['max_deadline_s']:g}): a queued job's "
                "record would expire before the job may run"
            ]
        if errors:
            raise ValidationError(errors)


class WorkerSchema(_Strict):
    concurrency = fields.Int(required=True, validate=validate.Range(min=1, max=5000))
    shutdown_grace_s = fields.Float(required=True, validate=validate.Range(min=0, max=300))
    lease_s = fields.Float(required=True, validate=validate.Range(min=1, max=600))
    reaper_interval_s = fields.Float(required=True, validate=validate.Range(min=0.2, max=600))
    heartbeat_s = fields.Float(required=True, validate=validate.Range(min=1, max=600))
    interactive_share = fields.Float(required=True, validate=validate.Range(min=0, max=0.9))


class HealthSchema(_Strict):
    interval_s = fields.Float(required=True, validate=validate.Range(min=1))
    timeout_s = fields.Float(required=True, validate=validate.Range(min=0.1, max=300))


def _loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config_api_url(url: str) -> None:
    """Whoever answers the HTTP config source sets keys, provider URLs and provider keys, and
    its token travels with each request: https only, except to a loopback host (tests, a
    config service on the same machine)."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError:
        return  # not a URL: _URL says so
    if scheme == "https" or (scheme == "http" and _loopback_host(host)):
        return
    raise ValidationError(
        "must be an https:// URL: whoever answers it sets the gateway's keys and providers. "
        "Plain http:// is accepted only for a loopback host (localhost, 127.0.0.1, ::1)"
    )


class HttpSourceSchema(_Strict):
    url = fields.Str(required=True, validate=[_URL, _config_api_url])
    token = fields.Str(load_default=None, allow_none=True)


class RefreshSchema(_Strict):
    interval_s = fields.Float(required=True, validate=validate.Range(min=1))
    http_source = fields.Nested(HttpSourceSchema, allow_none=True)


class MetricsSchema(_Strict):
    token = fields.Str(allow_none=True)


class CorsSchema(_Strict):
    # Browsers may call /v1/* from these origins ("*" for any); empty: CORS off.
    allowed_origins = fields.List(
        fields.Str(validate=validate.Regexp(r"^(\*|https?://[^/\s]+)$")), required=True
    )


class StreamingSchema(_Strict):
    ttl_s = fields.Int(required=True, validate=validate.Range(min=10))
    cancel_on_disconnect = fields.Bool(required=True)
    keepalive_s = fields.Float(required=True, validate=validate.Range(min=0.1, max=300))


class S3Schema(_Strict):
    bucket = fields.Str(required=True, allow_none=True, validate=validate.Length(min=3, max=63))
    prefix = fields.Str(required=True, validate=validate.Length(max=512))
    endpoint_url = fields.Str(
        required=True, allow_none=True, validate=validate.Regexp(r"^https?://")
    )
    region = fields.Str(required=True, allow_none=True)


class FilesSchema(_Strict):
    store = fields.Str(required=True, validate=validate.OneOf(["redis", "s3"]))
    max_bytes = fields.Int(required=True, validate=validate.Range(min=1, max=2**40))
    redis_max_bytes = fields.Int(required=True, validate=validate.Range(min=1, max=2**40))
    max_bytes_per_key = fields.Int(required=True, validate=validate.Range(min=1, max=2**50))
    s3 = fields.Nested(S3Schema, required=True)

    @validates_schema
    def _bucket(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("store") == "s3" and not (data.get("s3") or {}).get("bucket"):
            raise ValidationError("files.store is s3: files.s3.bucket is required", "s3")


class BatchesSchema(_Strict):
    max_lines = fields.Int(required=True, validate=validate.Range(min=1, max=10_000_000))
    max_bytes = fields.Int(required=True, validate=validate.Range(min=1, max=2**40))
    window_s = fields.Float(
        required=True, allow_none=True, validate=validate.Range(min=1, max=86400)
    )
    expand_ahead = fields.Int(required=True, validate=validate.Range(min=1, max=100_000))
    max_active_per_key = fields.Int(required=True, validate=validate.Range(min=1, max=100_000))
    max_line_errors = fields.Int(required=True, validate=validate.Range(min=1, max=100_000))


class WebhooksSchema(_Strict):
    allow_private = fields.Bool(required=True)  # deliver to private and loopback addresses
    timeout_s = fields.Float(required=True, validate=validate.Range(min=0.1, max=300))
    max_attempts = fields.Int(required=True, validate=validate.Range(min=1, max=100))
    backoff_s = fields.Float(required=True, validate=validate.Range(min=0.01, max=86400))
    max_backoff_s = fields.Float(required=True, validate=validate.Range(min=0.01, max=86400))
    keep_s = fields.Int(required=True, validate=validate.Range(min=60, max=90 * 86400))


def _not_sentinel(url: str | None) -> None:
    """redis-py cannot open a ``sentinel://`` URL (``from_url`` raises ValueError)."""
    if url and url.lower().startswith("sentinel://"):
        raise ValidationError(
            "a sentinel:// URL is not a Redis URL: Redis Sentinel is configured with "
            "REDIS_SENTINELS (host:port,host:port,...) and REDIS_SENTINEL_MASTER (the master's "
            "name), not with a URL"
        )


def _redis_url(url: str) -> None:
    _not_sentinel(url)
    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ValidationError("must be a redis://, rediss:// or unix:// URL")


class RedisSchema(_Strict):
    url = fields.Str(required=True, validate=_redis_url)
    prefix = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,32}$"))
    # Start on a Redis whose maxmemory-policy evicts keys (shared/redis_checks.py).
    allow_eviction = fields.Bool(required=True)


class BrokerSchema(_Strict):
    url = fields.Str(allow_none=True, validate=_not_sentinel)


class ConfigSectionSchema(_Strict):
    # Glob patterns (``*_API_KEY``) of the variables the Redis layer and the HTTP source may
    # name in secret fields (shared.config.layers.resolve_dynamic).
    env_allow = fields.List(fields.Str(validate=validate.Length(min=1)), required=True)


class ConfigSchema(_Strict):
    providers = fields.Dict(keys=fields.Str(), values=fields.Nested(ProviderSchema), required=True)
    models = fields.Dict(
        keys=fields.Str(),
        values=fields.List(fields.Nested(DeploymentSchema), validate=validate.Length(min=1)),
        required=True,
    )
    default_model = fields.Str(allow_none=True)
    auth = fields.Nested(AuthSchema, required=True)
    limits = fields.Nested(LimitsSchema, required=True)
    retry = fields.Nested(RetrySchema, required=True)
    breaker = fields.Nested(BreakerSchema, required=True)
    fallbacks = fields.Nested(FallbacksSchema, required=True)
    cache = fields.Nested(CacheSchema, required=True)
    queue = fields.Nested(QueueSchema, required=True)
    worker = fields.Nested(WorkerSchema, required=True)
    health = fields.Nested(HealthSchema, required=True)
    refresh = fields.Nested(RefreshSchema, required=True)
    metrics = fields.Nested(MetricsSchema, required=True)
    cors = fields.Nested(CorsSchema, required=True)
    streaming = fields.Nested(StreamingSchema, required=True)
    files = fields.Nested(FilesSchema, required=True)
    batches = fields.Nested(BatchesSchema, required=True)
    webhooks = fields.Nested(WebhooksSchema, required=True)
    redis = fields.Nested(RedisSchema, required=True)
    broker = fields.Nested(BrokerSchema, required=True)
    config = fields.Nested(ConfigSectionSchema, required=True)

    # Runs even when fields failed (so `config check` names every bad field at once), on the
    # original input: a provider with a bad field is still a provider that exists.
    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _references(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        if not isinstance(original, dict):
            return
        errors: dict[str, list[str]] = {}
        providers = original.get("providers")
        providers = providers if isinstance(providers, dict) else {}
        models = original.get("models")
        models = models if isinstance(models, dict) else {}
        for name, deployments in models.items():
            for i, dep in enumerate(deployments if isinstance(deployments, list) else []):
                target = dep.get("provider") if isinstance(dep, dict) else None
                if isinstance(target, str) and target not in providers:
                    errors[f"models.{name}.{i}.provider"] = [
                        f"names provider {target!r}, which is not configured"
                    ]
        default = original.get("default_model")
        if isinstance(default, str) and default not in models:
            errors["default_model"] = [f"names model {default!r}, which is not configured"]
        auth_raw = original.get("auth")
        auth: dict[str, Any] = auth_raw if isinstance(auth_raw, dict) else {}
        ids = [
            k.get("id")
            for section in ("keys", "admin_keys")
            for k in (auth.get(section) or [])
            if isinstance(k, dict)
        ]
        if len(ids) != len(set(ids)):
            errors["auth.keys"] = ["key ids must be unique across keys and admin_keys"]
        if errors:
            raise ValidationError(errors)


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into {dotted.path: [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("_schema", "value"):  # "value": a Dict field's entry; not a config name
                path = prefix or str(key)
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for p, msgs in flatten_errors(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            out[prefix] = list(messages)
        else:
            for m in messages:
                for p, msgs in flatten_errors(m, prefix).items():
                    out.setdefault(p, []).extend(msgs)
    else:
        out[prefix] = [str(messages)]
    return out

"""Prometheus metrics (prometheus-client).

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before this module is imported, as
``llm-gateway api`` does for its gunicorn workers) values are aggregated across processes at
scrape time; otherwise the default registry of this process is served.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)

# The API entries a request or a job comes in by (the ``door`` label): one per API family, so
# requests, errors, latency and tokens can be told apart by family. Any other route (health,
# admin, metrics, dashboard, models, usage, ...) is door "other".
DOORS = ("chat", "jobs", "batches", "responses", "messages", "embeddings")
OTHER_DOOR = "other"
# Blueprints that serve a door not named after them: files are uploaded for batches.
_BLUEPRINT_DOORS = {"files": "batches"}


def door_of(blueprint: str | None) -> str:
    """The door of a request, from the blueprint of the route it matched (None: unmatched)."""
    name = _BLUEPRINT_DOORS.get(blueprint or "", blueprint or "")
    return name if name in DOORS else OTHER_DOOR


def error_type(body: object) -> str:
    """The ``type`` of an error envelope (``{"error": {"type": ...}}``); "" for any other body."""
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    return kind if isinstance(kind, str) else ""


HTTP_REQUESTS = Counter(
    "gateway_http_requests_total",
    "HTTP requests by route, method, status and door",
    ["route", "method", "status", "door"],
)
HTTP_LATENCY = Histogram(
    "gateway_http_request_duration_seconds",
    "Front-door latency by route and door (for sync chat: includes the wait for the job)",
    ["route", "door"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_ERRORS = Counter(
    "gateway_http_errors_total",
    "Error answers (status >= 400) at a door (never door other), by status and the error "
    "envelope's type (empty when the answer has none)",
    ["door", "status", "type"],
)
JOBS_SUBMITTED = Counter("gateway_jobs_submitted_total", "Jobs accepted, by priority", ["priority"])
JOBS_FINISHED = Counter("gateway_jobs_finished_total", "Jobs that became terminal", ["status"])
PROVIDER_CALLS = Counter(
    "gateway_provider_calls_total", "Provider calls by outcome", ["provider", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "gateway_provider_call_duration_seconds",
    "Provider call latency",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
RETRIES = Counter(
    "gateway_retries_total", "Provider calls retried, by class", ["provider", "error_class"]
)
FALLBACKS = Counter("gateway_fallbacks_total", "Fallbacks taken, by kind", ["kind"])
BREAKER_TRANSITIONS = Counter(
    "gateway_breaker_transitions_total", "Circuit breaker transitions", ["breaker", "to"]
)
LEASES_RECLAIMED = Counter(
    "gateway_leases_reclaimed_total", "Jobs republished after their worker vanished"
)
JOBS_PUT_BACK = Counter(
    "gateway_jobs_put_back_total",
    "Jobs a worker gave back for another worker instead of running them, by reason "
    "(unknown_kind: a kind this worker version cannot run, workers/kinds.py)",
    ["reason"],
)
LOST_MESSAGES_REPUBLISHED = Counter(
    "gateway_lost_messages_republished_total",
    "Queued jobs republished because their broker message was lost (workers/reaper.py)",
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total", "Requests refused by an API key's limits, by limit", ["limit"]
)
CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups_total", "Response-cache lookups, by result", ["result"]
)
CACHE_STORES = Counter("gateway_cache_stores_total", "Answers written to the response cache")
QUOTA_DELAYS = Counter(
    "gateway_quota_delays_total",
    "Jobs delayed because every deployment was over its provider quota, by provider",
    ["provider", "limit"],
)
QUEUE_WAIT = Histogram(
    "gateway_queue_wait_seconds",
    "From a job's creation to its first start on a worker, by priority",
    ["priority"],
    buckets=_LATENCY_BUCKETS,
)
JOB_DURATION = Histogram(
    "gateway_job_duration_seconds",
    "End to end: from a job's creation to its terminal state, by priority and status",
    ["priority", "status"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "gateway_tokens_total",
    "Tokens the providers reported (usage), by provider, public model, API key id, kind "
    "(prompt | completion) and the door the job came in by",
    ["provider", "model", "key_id", "kind", "door"],
)

COST = Counter(
    "gateway_cost_usd",
    "What provider calls cost (USD, from their usage and the deployment's price), by API key "
    "id, provider and the provider's model",
    ["key_id", "provider", "model"],
)

CONFIG_RELOADS = Counter(
    "gateway_config_reloads_total",
    "Config refreshes that changed something: applied, refused (invalid; the old config "
    "serves on) or http_source_error (its last answer kept)",
    ["result"],
)


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The exposition text for this process, or for all processes in multiprocess mode, plus
    ``extra`` (values read at scrape time, such as queue depths)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    if extra is not None:
        scraped = CollectorRegistry()
        scraped.register(extra)
        body += generate_latest(scraped)
    return body, CONTENT_TYPE_LATEST

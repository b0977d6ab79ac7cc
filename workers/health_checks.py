"""Provider health: a cheap call per provider from beat, results in Redis for routing.

Each check GETs ``base_url + health_path`` (the models list by default) within
``health.timeout_s``. A failing provider is marked unhealthy and routing skips it until a
check passes again. A provider never checked counts as healthy.
"""

from __future__ import annotations

import logging
import time

import httpx

from shared.config.settings import ProviderSettings
from shared.state.provider_health import HealthStore
from shared.wire.tls import shared_ssl_context

log = logging.getLogger(__name__)


def probe(provider: ProviderSettings, timeout_s: float) -> tuple[bool, str | None, float]:
    """One health check: (healthy, error, latency ms)."""
    url = provider.base_url.rstrip("/") + provider.health_path
    headers = {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
    started = time.perf_counter()
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s, verify=shared_ssl_context())
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}", (time.perf_counter() - started) * 1000
    latency = (time.perf_counter() - started) * 1000
    if resp.status_code >= 400:
        return False, f"health check answered {resp.status_code}", latency
    return True, None, latency


def check_all(
    providers: dict[str, ProviderSettings], store: HealthStore, timeout_s: float, interval_s: float
) -> dict[str, bool]:
    results = {}
    for name, provider in providers.items():
        ok, error, latency = probe(provider, timeout_s)
        store.mark(name, ok, error, latency, ttl_s=max(60.0, interval_s * 10))
        results[name] = ok
        if not ok:
            log.warning("provider %s unhealthy: %s", name, error, extra={"provider": name})
    return results

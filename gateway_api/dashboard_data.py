"""What the dashboard shows, read from what the fleet keeps in Redis (nothing is computed
until someone looks): providers (health, breaker and its time left open, calls in flight
against the limit, fleet-wide p50/p95 and error rate over the last minutes, last error),
queues per priority (depth, oldest age), workers (heartbeat age, in flight), jobs ended per
minute by status, recent failures, counters (per API door too: jobs accepted, error
answers), running batches."""

from __future__ import annotations

import time
from typing import Any

from gateway_api import fleet_status
from gateway_api.services import Services
from shared.state.job_record import PRIORITIES, TERMINAL
from shared.state.provider_stats import ProviderStats

CHART_MINUTES = 30
RECENT_FAILED = 20
# What the recent failures show of each job (never its request or attempts).
_FAILED_FIELDS = ("id", "owner", "model", "provider", "finished_at", "error", "slim")


def snapshot(services: Services) -> dict[str, Any]:
    now = time.time()
    r, k, s = services.redis, services.keys, services.settings
    workers = fleet_status.workers(services)
    providers = fleet_status.providers(services, workers)
    latency = ProviderStats(r, k).summary(providers)
    for name, p in providers.items():
        p.update(latency[name])
        state = services.stores.breakers.state(name)
        until = float(str(state.get("open_until") or 0))
        p["open_for_s"] = round(until - now, 1) if until > now else None
        p["max_concurrent"] = s.providers[name].max_concurrent
    return {
        "at": now,
        "config_version": s.version,
        "providers": providers,
        "queues": _queues(services, now),
        "workers": [{**w, "age_s": round(now - float(w["last_seen"] or now), 1)} for w in workers],
        "jobs_per_minute": _per_minute(services, now),
        "recent_failed": _recent_failed(services),
        "counters": fleet_status.metric_summary(services.stores.stats.read()),
        "batches": _batches(services),
    }


def _queues(services: Services, now: float) -> dict[str, dict[str, Any]]:
    depths = fleet_status.queue_depths(services)
    pipe = services.redis.pipeline(transaction=False)
    for p in PRIORITIES:
        pipe.zrange(services.keys.pending(p), 0, 0, withscores=True)
    oldest = pipe.execute()
    out = {}
    for p, first in zip(PRIORITIES, oldest, strict=True):
        age = round(now - float(first[0][1]), 1) if first else None
        out[p] = {"depth": depths.get(p), "oldest_age_s": age}
    return out


def _per_minute(services: Services, now: float) -> list[dict[str, Any]]:
    this = int(now // 60)
    minutes = list(range(this - CHART_MINUTES + 1, this + 1))
    pipe = services.redis.pipeline(transaction=False)
    for m in minutes:
        pipe.hgetall(services.keys.stats_minute(m))
    return [
        {"minute": m * 60, **{st: int(h.get(st) or 0) for st in sorted(TERMINAL)}}
        for m, h in zip(minutes, pipe.execute(), strict=True)
    ]


def _recent_failed(services: Services) -> list[dict[str, Any]]:
    ids = [str(i) for i in services.redis.lrange(services.keys.recent_failed, 0, RECENT_FAILED - 1)]
    out = []
    for job in services.stores.jobs.get_many(ids, _FAILED_FIELDS):
        if job is None:
            continue
        err = job.error or {}
        out.append(
            {
                "id": job.id,
                "owner": job.owner,
                "model": job.model,
                "provider": job.provider,
                "finished_at": job.finished_at,
                "error": {k: err.get(k) for k in ("type", "code", "message")},
            }
        )
    return out


def _batches(services: Services) -> list[dict[str, Any]]:
    out = []
    for batch_id in services.stores.batches.active(100):
        b = services.stores.batches.get(batch_id)
        if b is not None:
            out.append(
                {
                    "id": b.id,
                    "owner": b.owner,
                    "status": b.status,
                    "total": b.total,
                    "completed": b.completed,
                    "failed": b.failed,
                    "created_at": b.created_at,
                    "expires_at": b.expires_at,
                }
            )
    return out

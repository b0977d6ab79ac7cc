"""The fleet's state as the status routes, the metrics page and the dashboard show it: Redis and
the broker reachable, the workers' heartbeats, each provider's breaker and health, the queue
depths and the fleet-wide counts. Read from Redis on each call (only the Redis's own settings
are cached, for a few seconds: ``Services.redis_check``). Nothing here scans the keyspace: each
call costs the same with 10 keys in Redis or 10 million."""

from __future__ import annotations

from typing import Any

from gateway_api.services import Services
from shared.celery_app import QUEUES
from shared.redis_checks import RedisCheck
from shared.state import fleet_stats
from shared.state.breaker import breaker_name
from shared.state.worker_beats import heartbeat_ttl_s


def redis_ok(services: Services) -> tuple[bool, str | None]:
    try:
        services.redis.ping()
        return True, None
    except Exception as exc:
        return False, f"redis unreachable: {type(exc).__name__}"


def broker_ok(services: Services) -> tuple[bool, str | None]:
    s = services.settings
    if s.broker_url == s.redis_url:
        return redis_ok(services)
    try:
        with services.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, None
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}"


def redis_check(services: Services) -> RedisCheck:
    """Could the Redis lose accepted jobs (``shared.redis_checks``; read every few seconds)?"""
    return services.redis_check.get(services.redis)


def redis_memory(check: RedisCheck) -> dict[str, Any] | None:
    """Redis memory against its limit, and when it fills at the current growth."""
    f = check.facts
    if f is None:
        return None
    return {
        "used_bytes": f.used_memory,
        "maxmemory_bytes": f.maxmemory,  # 0: no limit set
        "limit_bytes": f.memory_limit,  # maxmemory, else the machine's memory
        "growth_bytes_per_s": None if check.growth is None else round(check.growth, 1),
        "fills_in_s": None if check.fills_in_s is None else round(check.fills_in_s),
    }


def workers(services: Services) -> list[dict[str, Any]]:
    """Each live worker process (``id`` its ``host:pid``), from the heartbeat index."""
    ttl = heartbeat_ttl_s(services.settings.worker.heartbeat_s)
    return services.stores.beats.live(ttl)


def worker_count(services: Services) -> int:
    """How many workers beat lately: one command, whatever the fleet's size."""
    return services.stores.beats.count(heartbeat_ttl_s(services.settings.worker.heartbeat_s))


def breaker_states(services: Services) -> dict[str, str | dict[str, str]]:
    """Each provider's breaker state, or with ``breaker_per_model`` a state per model."""
    s, breakers = services.settings, services.stores.breakers
    out: dict[str, str | dict[str, str]] = {}
    for name, p in s.providers.items():
        if p.breaker_per_model:
            models = sorted(
                {d.model for deps in s.models.values() for d in deps if d.provider == name}
            )
            out[name] = {
                m: str(breakers.state(breaker_name(name, m, True))["state"]) for m in models
            }
        else:
            out[name] = str(breakers.state(name)["state"])
    return out


def providers(services: Services, workers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    s = services.settings
    states = breaker_states(services)
    out: dict[str, dict[str, Any]] = {}
    for name, p in s.providers.items():
        breaker = states[name]
        h = services.stores.health.get(name)
        out[name] = {
            "type": p.type,
            "healthy": h["healthy"],
            "breaker": breaker,
            "in_flight": sum(int(w["inflight"].get(name, 0)) for w in workers),
            "max_connections": p.max_connections,
            "last_checked_at": h["checked_at"],
            "last_error": h["last_error"],
            "last_error_at": h["last_error_at"],
        }
    return out


def serving(providers: dict[str, dict[str, Any]]) -> bool:
    """Can any provider take a call (healthy, breaker not open)?"""
    for p in providers.values():
        states = p["breaker"].values() if isinstance(p["breaker"], dict) else [p["breaker"]]
        if p["healthy"] and any(state != "open" for state in states):
            return True
    return not providers


def queue_depths(services: Services) -> dict[str, int | None]:
    s = services.settings
    if s.broker_url != s.redis_url:
        return {p: None for p in QUEUES}
    pipe = services.redis.pipeline(transaction=False)
    keys = services.keys
    for priority, queue in QUEUES.items():
        pipe.llen(keys.broker_queue(queue))
        pipe.llen(keys.group(queue))
        pipe.get(keys.fair_held(priority))
    got = pipe.execute()
    # Jobs, not messages: each message names a job (a group's, the job that sent it), and
    # the jobs gathered behind it wait in the group's list. (A group's remainder message
    # names none: counted as one more while it waits.) Jobs held back by fair share
    # (shared/state/fair.py) are queued too.
    return {p: got[3 * i] + got[3 * i + 1] + int(got[3 * i + 2] or 0) for i, p in enumerate(QUEUES)}


def metric_summary(counts: dict[str, int]) -> dict[str, Any]:
    """The fleet-wide counts (``shared.state.fleet_stats``) shaped for the status page."""
    jobs = {
        status: counts.get(f"jobs_{status}", 0)
        for status in ("submitted", "succeeded", "failed", "cancelled", "expired")
    }
    ended = jobs["succeeded"] + jobs["failed"] + jobs["expired"]
    return {
        "since": counts.get("since"),
        "jobs": jobs,
        "success_rate": round(jobs["succeeded"] / ended, 4) if ended else None,
        "retries": counts.get(fleet_stats.RETRIES, 0),
        "fallbacks": {
            k.removeprefix("fallback_"): v for k, v in counts.items() if k.startswith("fallback_")
        },
        "cache_hits": counts.get(fleet_stats.CACHE_HITS, 0),
        "rate_limited": counts.get(fleet_stats.RATE_LIMITED, 0),
        "doors": doors(counts),
    }


def doors(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per API door (``shared.metrics.DOORS``): queued jobs it created and its error answers,
    for each door that has counted either."""
    out: dict[str, dict[str, int]] = {}
    for field, n in counts.items():
        for prefix, what in ((fleet_stats.DOOR_JOBS, "jobs"), (fleet_stats.DOOR_ERRORS, "errors")):
            if field.startswith(prefix):
                door = out.setdefault(field.removeprefix(prefix), {"jobs": 0, "errors": 0})
                door[what] = n
    return dict(sorted(out.items()))

"""The webhook duty (a fleet duty, ``workers.duties``): turn outbox entries into deliveries
and send the deliveries that are due, each attempt signed, recorded and, on failure,
retried with backoff (``Retry-After`` honoured) up to ``webhooks.max_attempts``
(``shared/webhooks.py`` has the whole path)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.batch.batch_store import ENDED
from shared.config.settings import WebhookEndpoint
from shared.state.job_record import TERMINAL
from shared.webhooks import FAILED, SUCCEEDED, Delivery, signature
from shared.wire.tls import shared_ssl_context
from workers.context import WorkerContext
from workers.lifecycle import spawn
from workers.webhook_target import Refused, pinned_client, send

log = logging.getLogger(__name__)
WEBHOOK_INTERVAL_S = 0.2
MAX_SENDING = 64  # attempts in flight in one process
USER_AGENT = "llm-gateway-webhooks/1"
Held = Callable[[], bool]

_sending = threading.BoundedSemaphore(MAX_SENDING)
_clients: dict[bool, httpx.Client] = {}  # by webhooks.allow_private (a live setting)
_client_lock = threading.Lock()


def _http(allow_private: bool) -> httpx.Client:
    """The process's client for webhook sends: each connection checks the address it dials
    (``workers.webhook_target``); none follows a redirect (a 3xx is a failed attempt)."""
    with _client_lock:
        client = _clients.get(allow_private)
        if client is None:
            client = _clients[allow_private] = pinned_client(allow_private, shared_ssl_context())
        return client


def _always() -> bool:
    return True


def deliver_webhooks(ctx: WorkerContext, held: Held = _always) -> int:
    """One run of the duty: the outbox, then the due deliveries; returns attempts started."""
    turn_outbox(ctx)
    started = 0
    now = time.time()
    lease_s = ctx.settings.webhooks.timeout_s + 5
    for delivery_id in ctx.stores.webhooks.due(now):
        if not held() or not _sending.acquire(blocking=False):
            break
        try:
            d = ctx.stores.webhooks.claim(delivery_id, now, lease_s)
        except Exception:
            _sending.release()
            raise
        if d is None:
            _sending.release()
            continue
        spawn(lambda d=d: _send_one(ctx, d), f"webhook-{d.id}")  # type: ignore[misc]
        started += 1
    return started


def turn_outbox(ctx: WorkerContext) -> int:
    """Each outbox entry becomes one delivery per endpoint of its key that wants the event."""
    made = 0
    s = ctx.settings
    for entry in ctx.stores.webhooks.take_outbox():
        kind, _, ident = entry.partition(":")
        owner, event_type = "", ""
        if kind == "job":
            job = ctx.stores.jobs.get_fields(ident, ("id", "owner", "status"))
            if job is not None and job.status in TERMINAL:
                owner, event_type = job.owner, f"job.{job.status}"
        elif kind == "batch":
            batch = ctx.stores.batches.get(ident)
            if batch is not None and batch.status in ENDED:
                owner, event_type = batch.owner, f"batch.{batch.status}"
        key = s.key(owner) if owner else None
        if key is not None:
            urls = [w.url for w in key.webhooks if w.wants(event_type)]
            made += ctx.stores.webhooks.emit(
                owner, entry, event_type, ident, urls, s.webhooks.keep_s
            )
        ctx.stores.webhooks.done_with(entry)
    return made


def _endpoint(ctx: WorkerContext, d: Delivery) -> WebhookEndpoint | None:
    key = ctx.settings.key(d.owner)
    for w in key.webhooks if key else ():
        if w.url == d.url:
            return w
    return None


def _send_one(ctx: WorkerContext, d: Delivery) -> None:
    try:
        _attempt(ctx, d)
    except Exception:  # the claim lapses and the delivery comes due again
        log.warning("webhook attempt could not be recorded", extra={"delivery": d.id})
    finally:
        _sending.release()


def _attempt(ctx: WorkerContext, d: Delivery) -> None:
    w = ctx.settings.webhooks
    started = time.time()
    attempt: dict[str, Any] = {"at": int(started), "status_code": None, "error": None}
    endpoint = _endpoint(ctx, d)
    retry_after: float | None = None
    if endpoint is None:
        attempt["error"] = "the endpoint is no longer in config"
        outcome = FAILED
    else:
        try:
            ts = int(time.time())
            body = d.payload.encode()
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": d.event_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": signature(
                    (endpoint.secret, *endpoint.previous_secrets), d.event_id, ts, body
                ),
            }
            status, retry_header = send(_http(w.allow_private), d.url, body, headers, w.timeout_s)
            attempt["status_code"] = status
            outcome = SUCCEEDED if 200 <= status < 300 else "retry"
            retry_after = _retry_after(retry_header)
        except Refused as exc:
            attempt["error"] = f"refused: {exc}"
            outcome = FAILED
        except httpx.HTTPError as exc:
            attempt["error"] = f"{type(exc).__name__}: {exc}"[:300]
            outcome = "retry"
    attempt["duration_ms"] = round((time.time() - started) * 1000, 1)
    made = len(d.attempts) + 1
    if outcome == "retry" and made >= w.max_attempts:
        outcome = FAILED
    delay = min(w.max_backoff_s, w.backoff_s * 2 ** (made - 1))
    if retry_after is not None:
        delay = min(w.max_backoff_s, max(delay, retry_after))
    ctx.stores.webhooks.record(d.id, attempt, outcome, time.time() + delay, w.keep_s)
    log.log(
        logging.INFO if outcome == SUCCEEDED else logging.WARNING,
        "webhook attempt",
        extra={
            "delivery": d.id,
            "event": d.type,
            "status_code": attempt["status_code"],
            "outcome": outcome,
            "attempt": made,
        },
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number of seconds; a date is ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

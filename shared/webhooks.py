"""Webhooks per Standard Webhooks (https://www.standardwebhooks.com), the way OpenAI's own
events work: thin events (``{"id": "evt_...", "object": "event", "type", "created_at",
"data": {"id"}}``) signed ``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` with each of the
endpoint's ``whsec_`` secrets, delivered at least once with retries and a delivery log.

The path from a state change to a delivery never depends on one process:
1. the Lua script that ends a job that asked for events (finish.lua, terminate.lua) or a
   batch (batch_move.lua) pushes it to the outbox in the same step;
2. the webhook duty (any worker) turns each outbox entry into one delivery per subscribed
   endpoint (``webhook_emit.lua``; ids fixed by the entry, so doing it twice is harmless);
3. senders claim due deliveries (``webhook_claim.lua``: re-scored past the attempt's
   timeout, so a lost sender's delivery comes due again) and record each attempt
   (``webhook_record.lua``): done, due again after a backoff, or failed.

Secrets stay in config: a delivery names its endpoint by URL and the sender looks its
secrets up when it signs; no record, log or message holds one. Written by hand: the standard
is a few lines of HMAC, and no library keeps the outbox and the log in Redis for us.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared import lua
from shared.keys import Keys
from shared.state import paging
from shared.wire import fastjson

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
OUTBOX_TAKE = 100
# A delivery record's fields, as ``Delivery.from_hash`` reads them.
_FIELDS = (
    "id",
    "owner",
    "event_id",
    "type",
    "url",
    "status",
    "payload",
    "created_at",
    "next_at",
    "attempts",
    "replays",
)


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


def event_id(entry: str) -> str:
    """The event an outbox entry stands for (the same however often it is turned)."""
    return "evt_" + hashlib.sha256(entry.encode()).hexdigest()[:24]


def delivery_id(evt: str, url: str) -> str:
    return "whd_" + hashlib.sha256(f"{evt}\n{url}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Delivery:
    id: str
    owner: str
    event_id: str
    type: str
    url: str
    status: str
    payload: str  # the event's JSON, exactly as signed
    created_at: float
    next_at: float | None
    attempts: list[dict[str, Any]]
    replays: int = 0

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Delivery:
        return cls(
            id=h["id"],
            owner=h["owner"],
            event_id=h["event_id"],
            type=h["type"],
            url=h["url"],
            status=h["status"],
            payload=h["payload"],
            created_at=float(h["created_at"]),
            next_at=float(h["next_at"]) if h.get("next_at") else None,
            attempts=json.loads(h.get("attempts") or "[]"),
            replays=int(h.get("replays") or 0),
        )

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_delivery",
            "event": json.loads(self.payload),
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": int(self.created_at),
            "next_attempt_at": int(self.next_at) if self.next_at else None,
            "replays": self.replays,
        }


class WebhookStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._emit = client.register_script(
            lua.as_function("hset_json", "hset_json") + lua.source("webhook_emit")
        )
        self._claim = client.register_script(lua.source("webhook_claim"))
        self._record = client.register_script(lua.source("webhook_record"))
        self._replay = client.register_script(lua.source("webhook_replay"))

    # -- the outbox ------------------------------------------------------------------------
    def take_outbox(self) -> list[str]:
        """Entries left taken by a lost worker first, then new ones (moved to the taken list
        as they are read: an entry is never lost between the two)."""
        k = self.keys
        left: Any = self.r.lrange(k.webhook_outbox_taken, 0, OUTBOX_TAKE - 1)
        if left:
            return [str(e) for e in left]
        out: list[str] = []
        for _ in range(OUTBOX_TAKE):
            entry: Any = self.r.lmove(k.webhook_outbox, k.webhook_outbox_taken, "LEFT", "RIGHT")
            if entry is None:
                break
            out.append(str(entry))
        return out

    def done_with(self, entry: str) -> None:
        self.r.lrem(self.keys.webhook_outbox_taken, 1, entry)

    def emit(
        self, owner: str, entry: str, event_type: str, data_id: str, urls: list[str], keep_s: int
    ) -> int:
        """The event's deliveries to ``urls``, due now; returns how many were new."""
        if not urls:
            return 0
        now = time.time()
        evt = event_id(entry)
        payload = fastjson.dumps_str(
            {
                "id": evt,
                "object": "event",
                "type": event_type,
                "created_at": int(now),
                "data": {"id": data_id},
            }
        )
        records = []
        for url in urls:
            records.append(
                {
                    "id": delivery_id(evt, url),
                    "owner": owner,
                    "event_id": evt,
                    "type": event_type,
                    "url": url,
                    "status": PENDING,
                    "payload": payload,
                    "created_at": repr(now),
                    "next_at": repr(now),
                    "attempts": "[]",
                }
            )
        k = self.keys
        return int(
            self._emit(
                keys=[
                    k.webhooks_due,
                    k.owner_webhook_deliveries(owner),
                    *[k.webhook_delivery(r["id"]) for r in records],
                ],
                args=[now, keep_s, *[fastjson.dumps_str(r) for r in records]],
            )
        )

    # -- senders ---------------------------------------------------------------------------
    def due(self, now: float, limit: int = 100) -> list[str]:
        raw: Any = self.r.zrangebyscore(self.keys.webhooks_due, "-inf", now, start=0, num=limit)
        return [str(i) for i in raw]

    def claim(self, delivery: str, now: float, lease_s: float) -> Delivery | None:
        flat: Any = self._claim(
            keys=[self.keys.webhooks_due, self.keys.webhook_delivery(delivery)],
            args=[delivery, now, now + lease_s],
        )
        if not flat:
            return None
        return Delivery.from_hash({str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)})

    def record(
        self, delivery: str, attempt: dict[str, Any], outcome: str, next_at: float, keep_s: int
    ) -> int:
        return int(
            self._record(
                keys=[self.keys.webhooks_due, self.keys.webhook_delivery(delivery)],
                args=[delivery, fastjson.dumps_str(attempt), outcome, next_at, keep_s],
            )
        )

    # -- the API's side --------------------------------------------------------------------
    def get(self, owner: str, delivery: str) -> Delivery | None:
        if not delivery.startswith("whd_"):
            return None
        h: Any = self.r.hgetall(self.keys.webhook_delivery(delivery))
        if not h or h.get("owner") != owner:
            return None
        return Delivery.from_hash(h)

    def replay(self, delivery: str) -> int:
        return int(
            self._replay(
                keys=[self.keys.webhooks_due, self.keys.webhook_delivery(delivery)],
                args=[delivery, time.time()],
            )
        )

    def page(
        self, owner: str, limit: int, after: str | None, status: str | None
    ) -> tuple[list[Delivery], bool, str | None]:
        """The owner's deliveries, newest first, after ``after``, of ``status`` if given:
        (deliveries, whether more may follow, where the next page starts when none was found:
        ``paging.scan``). Reads the index a page at a time and each candidate's status, then
        the records of the page."""

        def keep(ids: list[str]) -> list[bool]:
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hget(self.keys.webhook_delivery(i), "status")
            return [s is not None and status in (None, s) for s in pipe.execute()]

        index = self.keys.owner_webhook_deliveries(owner)
        got = paging.scan(self.r, index, limit, after, keep)
        keys = [self.keys.webhook_delivery(i) for i in got.ids]
        records = paging.read_records(self.r, keys, _FIELDS)
        return [Delivery.from_hash(h) for h in records if h is not None], got.more, got.resume

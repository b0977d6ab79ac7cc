"""``Idempotency-Key``: the same key and body give the same job, per API key, for as long as the
job's record is kept (``queue.result_ttl_s``, 24 h by default).

The first request claims the key atomically (``idem_claim.lua``) and creates the job; a
repeat gets that job; the same key with a different body is refused (422), as in the IETF
httpapi idempotency draft and Stripe's API. Concurrent duplicates create exactly one job.

A claim lives ``queue.result_ttl_s`` from the moment it is made, and the job's record at least as
long from its creation (and again from its end): a claim never outlives the record. One that
did would make a replay after the record's expiry find a claim naming a job that is gone. A
synchronous chat completion's claim lives its deadline plus ``queue.sync_result_ttl_s`` (its
whole answer is kept that long after it ends: a retry never runs it twice while it may run).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from shared import lua
from shared.keys import Keys

MAX_KEY_LENGTH = 255
# A claim this old whose job record does not exist was left by a request that died between
# the claim and the job's creation: a repeat may take the key over.
STALE_CLAIM_S = 10.0


@dataclass(frozen=True)
class Claim:
    job_id: str  # the job this key stands for
    first: bool  # this request claimed the key: create the job
    same_body: bool = True
    record: str = ""  # the stored record, as read
    claimed_at: float = 0.0

    @property
    def stale(self) -> bool:
        return not self.first and time.time() - self.claimed_at > STALE_CLAIM_S


def body_digest(route: str, body: Any) -> str:
    canonical = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, client: Redis, keys: Keys, ttl_s: int) -> None:
        """``ttl_s``: a claim's lifetime, the job record's (``queue.result_ttl_s``)."""
        self.r, self.keys, self.ttl_s = client, keys, int(ttl_s)
        self._claim = client.register_script(lua.source("idem_claim"))
        self._take_over = client.register_script(lua.source("idem_take_over"))
        self._release = client.register_script(lua.source("idem_release"))

    def _key(self, owner: str, key: str) -> str:
        return self.keys.idempotency(owner, hashlib.sha256(key.encode()).hexdigest())

    @staticmethod
    def _record(job_id: str, digest: str) -> str:
        return json.dumps({"job_id": job_id, "body_sha256": digest, "at": round(time.time(), 3)})

    @staticmethod
    def _held(held: str, digest: str) -> Claim:
        existing = json.loads(held)
        return Claim(
            existing["job_id"],
            first=False,
            same_body=existing["body_sha256"] == digest,
            record=held,
            claimed_at=float(existing.get("at") or 0.0),
        )

    def claim(
        self, owner: str, key: str, digest: str, job_id: str, ttl_s: int | None = None
    ) -> Claim:
        """``ttl_s``: the claim's lifetime when shorter than the record's (a synchronous job's
        answer is kept ``queue.sync_result_ttl_s``, and its key no longer)."""
        held = self._claim(
            keys=[self._key(owner, key)],
            args=[self._record(job_id, digest), ttl_s or self.ttl_s],
        )
        if not held:
            return Claim(job_id, first=True)
        return self._held(str(held), digest)

    def take_over(
        self, owner: str, key: str, stale: Claim, job_id: str, ttl_s: int | None = None
    ) -> Claim:
        """Replace a stale claim (as read) by one for ``job_id``; unless it changed meanwhile."""
        digest = json.loads(stale.record)["body_sha256"]
        held = self._take_over(
            keys=[self._key(owner, key)],
            args=[stale.record, self._record(job_id, digest), ttl_s or self.ttl_s],
        )
        if not held:
            return Claim(job_id, first=True)
        return self._held(str(held), digest)

    def release(self, owner: str, key: str, job_id: str, unless_created: bool = False) -> None:
        """Forget a claim whose job was never accepted (queue full, publish failed).
        ``unless_created``: not while the job's record exists (whether it was created is not
        known: Redis went away during the step that creates it)."""
        keys = [self._key(owner, key)]
        if unless_created:
            keys.append(self.keys.job(job_id))
        self._release(keys=keys, args=[job_id])

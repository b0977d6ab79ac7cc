"""``Idempotency-Key``: the same key and body give the same job, per API key, for 24 h.

The first request claims the key atomically (``idem_claim.lua``) and creates the job; a
repeat gets that job; the same key with a different body is refused (422), as in the IETF
httpapi idempotency draft and Stripe's API. Concurrent duplicates create exactly one job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from shared.keys import Keys

TTL_S = 86400
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    job_id: str  # the job this key stands for
    first: bool  # this request claimed the key: create the job
    same_body: bool = True


def body_digest(route: str, body: Any) -> str:
    canonical = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._claim = client.register_script(
            (Path(__file__).with_name("lua") / "idem_claim.lua").read_text()
        )

    def _key(self, owner: str, key: str) -> str:
        return self.keys.idempotency(owner, hashlib.sha256(key.encode()).hexdigest())

    def claim(self, owner: str, key: str, digest: str, job_id: str) -> Claim:
        record = json.dumps({"job_id": job_id, "body_sha256": digest})
        held = self._claim(keys=[self._key(owner, key)], args=[record, TTL_S])
        if not held:
            return Claim(job_id, first=True)
        existing = json.loads(held)
        return Claim(existing["job_id"], first=False, same_body=existing["body_sha256"] == digest)

    def release(self, owner: str, key: str, job_id: str) -> None:
        """Forget a claim whose job was never accepted (queue full, publish failed)."""
        name = self._key(owner, key)
        raw = self.r.get(name)
        if raw and json.loads(str(raw)).get("job_id") == job_id:
            self.r.delete(name)

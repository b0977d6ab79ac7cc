"""A queued job record for tests that drive the job store directly."""

from __future__ import annotations

import time
from typing import Any

from shared.state.job_record import Job, new_job_id


def queued_job(deadline_s: float = 60, **fields: Any) -> Job:
    now = time.time()
    base: dict[str, Any] = {
        "id": new_job_id(),
        "owner": "o",
        "status": "queued",
        "priority": "normal",
        "model": "m",
        "request": {"messages": []},
        "created_at": now,
        "deadline_at": now + deadline_s,
    }
    return Job(**{**base, **fields})

"""The slimming duty: a synchronous job's full record (request, answer, stream log) is kept
``queue.sync_result_ttl_s``; then ``slim.lua`` rewrites it as a slim record for the rest of
``queue.result_ttl_s`` (docs/architecture.md "What a finished job keeps").

``job_ended.lua`` puts each such job in the slim-due set as it ends; this duty (one of the
fleet's, run by whichever worker holds its lease) takes the due ones in batches. A batch is one
script, so a lease changing hands mid-sweep slims nothing twice, and a worker lost mid-sweep
leaves the rest due for the next holder.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.context import WorkerContext

SLIM_INTERVAL_S = 1.0
SLIM_BATCH = 200  # ids per script: each call holds Redis for well under a millisecond per id


def slim_jobs(ctx: WorkerContext, held: Callable[[], bool]) -> int:
    """Slim every record that is due; returns how many were slimmed."""
    slimmed = 0
    while held():
        done, taken = ctx.stores.jobs.slim_due(time.time(), SLIM_BATCH)
        slimmed += done
        if taken < SLIM_BATCH:
            break
    return slimmed

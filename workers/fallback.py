"""The fallback policy when every deployment failed: wait for a recovery, the last good
answer (stale, from ``shared.state.cache``), then the degraded answer."""

from __future__ import annotations

import time
import uuid
from typing import Any

from shared import metrics
from shared.errors import GatewayError, NoHealthyProvider, ProviderFailed, stored_error
from shared.state import fleet_stats
from shared.state.job_record import FAILED, QUEUED, SUCCEEDED, Job
from shared.wire import openai_shape
from workers.context import WorkerContext
from workers.outcome import Outcome

# A job waiting for a provider to recover looks again at least this often.
RECOVERY_RECHECK_S = 5.0


def degraded_completion(text: str, model: str) -> dict[str, Any]:
    """The configured canned answer, shaped as a chat.completion."""
    return {
        "id": f"chatcmpl-degraded-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def after_all_failed(
    ctx: WorkerContext,
    job: Job,
    attempts: list[dict[str, Any]],
    last_error: GatewayError | None,
    unavailable: list[str],
) -> Outcome:
    """Every deployment failed or could not be tried: wait for a recovery if the job asked
    to, else the fallbacks in ``fallbacks.order`` (the last good answer, then the degraded
    answer), else the job fails with the last error."""
    s = ctx.settings
    options = job.options or {}
    if options.get("wait_for_recovery") and len(attempts) < s.retry.max_total_attempts:
        due = min(time.time() + RECOVERY_RECHECK_S, job.deadline_at)
        # Every deployment gets another chance once something recovers.
        return Outcome(QUEUED, {"attempts": attempts, "exhausted": []}, park_until=due)
    if last_error is None:
        reason = "; ".join(unavailable) or "no deployment could take the call"
        last_error = NoHealthyProvider(f"No healthy provider for {job.model}: {reason}")
    base = {"attempts": attempts}
    for kind in s.fallbacks.order_for(job.model):
        if kind == "cached_response":
            cached = ctx.stores.cache.stale(job.owner, job.request)
            if cached is not None:
                metrics.FALLBACKS.labels("cached_response").inc()
                ctx.stores.stats.add(fleet_stats.fallback("cached_response"))
                result = openai_shape.completion(cached.result, job.model)
                return Outcome(SUCCEEDED, {**base, "result": result, "cache": "stale"})
        elif kind == "degraded" and s.fallbacks.degraded_answer:
            metrics.FALLBACKS.labels("degraded").inc()
            ctx.stores.stats.add(fleet_stats.fallback("degraded"))
            answer = openai_shape.completion(
                degraded_completion(s.fallbacks.degraded_answer, job.model), job.model
            )
            return Outcome(SUCCEEDED, {**base, "result": answer, "degraded": True})
    return Outcome(
        FAILED,
        {
            **base,
            "error": stored_error(last_error or ProviderFailed("every deployment failed")),
        },
    )

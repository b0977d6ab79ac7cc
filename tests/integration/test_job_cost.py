"""A job's cost is the sum of what its deliveries were charged: a delivery whose lease lapsed
and whose answer came late is charged into the record, and the delivery that finishes the job
afterwards does not write over it (``charge.lua`` adds each charge to the record; the finish
never sets the cost). Against a real redis-server, with the worker's own conclude path."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from shared.config.loader import load_config
from shared.spend.cost import Usage
from shared.spend.usage import Charge
from shared.state.job_record import SUCCEEDED
from shared.state.jobs import Begin
from tests.support.jobs import queued_job
from tests.support.stack import KEYS
from workers.conclude import conclude
from workers.context import WorkerContext
from workers.outcome import Outcome


@pytest.fixture
def ctx(redis_db: str) -> Iterator[WorkerContext]:
    doc = {
        "redis": {"url": redis_db, "prefix": KEYS.prefix},
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
    }
    built = WorkerContext.build(load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}))
    yield built
    built.redis.close()


def _answer(micro: int) -> Outcome:
    result = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    charge = Charge("p", "x", Usage(1, 2), micro)
    return Outcome(SUCCEEDED, {"result": result, "provider": "p"}, charge=charge)


def test_a_lapsed_deliverys_late_charge_stays_in_the_jobs_cost(ctx: WorkerContext) -> None:
    jobs = ctx.stores.jobs
    job = queued_job()
    jobs.create(job)
    first = jobs.begin(job.id, "a", 30, 5)
    assert first.outcome is Begin.OK and first.job is not None
    ctx.redis.delete(KEYS.lease(job.id))  # delivery a's lease lapsed: the reaper took the job
    assert jobs.reclaim(job.id) == "normal"
    second = jobs.begin(job.id, "b", 30, 5)  # b's snapshot of the record: nothing charged yet
    assert second.outcome is Begin.OK and second.job is not None

    conclude(ctx, first.job, "a", _answer(300), None, time.time())  # a's answer, late
    conclude(ctx, second.job, "b", _answer(500), None, time.time())  # b finishes the job

    got = jobs.get(job.id)
    assert got is not None and got.status == SUCCEEDED
    assert got.cost_micro == 300 + 500  # both calls were billed, as usage and budget count
    day = time.strftime("%Y%m%d", time.gmtime())
    usage = ctx.redis.hget(KEYS.usage_prefix(job.owner) + day, "p\tx\tcost_micro")
    assert int(usage or 0) == got.cost_micro

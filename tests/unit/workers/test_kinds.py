"""A worker runs only the job kinds it knows (workers/kinds.py): any other job is put back,
parked ``queued`` for another worker (defer.lua), without a provider call, and counted; an
expired one still ends expired."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from shared.config.loader import load_config
from shared.keys import Keys
from shared.state.job_record import EXPIRED, KINDS, QUEUED, RETRYING, Job
from shared.state.jobs import Begin, BeginResult
from workers import kinds, runner
from workers.lease import ACTIVE, RENEWER
from workers.outcome import Outcome


def test_this_version_knows_chat_and_only_kinds_the_gateway_has() -> None:
    assert kinds.knows("chat")
    assert not kinds.knows("embeddings") and not kinds.knows("")
    assert kinds.KNOWN.issubset(KINDS)


class Store:
    """begin.lua's answer for one job; what was deferred."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.deferred: list[tuple[str, str, float, str, dict[str, Any]]] = []

    def begin(self, job_id: str, token: str, *_: Any) -> BeginResult:
        return BeginResult(Begin.OK, 1, self.job)

    def renew(self, *_: Any) -> bool:
        return True

    def defer(
        self, job_id: str, token: str, due: float, status: str, fields: dict[str, Any]
    ) -> int:
        self.deferred.append((job_id, token, due, status, fields))
        return 1


class Adapter:
    capabilities: Any = None

    def complete(self, *_: Any) -> Any:
        raise AssertionError("a job of an unknown kind reached a provider")

    stream = complete


def run(job: Job) -> tuple[Store, list[Outcome]]:
    settings = load_config(
        env={},
        overrides={
            "providers": {"p": {"type": "openai", "base_url": "http://p"}},
            "models": {"m": [{"provider": "p", "model": "pm"}]},
        },
    ).settings
    store = Store(job)
    ctx: Any = SimpleNamespace(
        settings=settings,
        adapters={"p": Adapter()},
        stores=SimpleNamespace(jobs=store),
        keys=Keys("gw"),
        redis=None,
    )
    concluded: list[Outcome] = []
    r = runner.JobRunner(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            runner, "conclude", lambda _ctx, _job, _tok, outcome, *_: concluded.append(outcome)
        )
        mp.setattr(kinds, "KNOWN", frozenset({"embeddings"}))  # an older worker: no chat
        r.run(job.id)
    return store, concluded


def job(**fields: Any) -> Job:
    now = time.time()
    base: dict[str, Any] = {"request": {"messages": []}, "created_at": now, "deadline_at": now + 60}
    return Job("job_k", "o", "running", "normal", "m", **{**base, **fields})


def put_backs() -> float:
    return REGISTRY.get_sample_value("gateway_jobs_put_back_total", {"reason": "unknown_kind"}) or 0


def test_an_unknown_kind_is_put_back_queued_with_its_start_undone() -> None:
    before = put_backs()
    store, concluded = run(job(started_at=time.time()))
    assert concluded == []  # nothing written as an outcome, no provider called
    [(job_id, _, due, status, fields)] = store.deferred
    assert job_id == "job_k" and status == QUEUED and fields == {"started_at": None}
    assert runner.PUT_BACK_S - 1 < due - time.time() <= runner.PUT_BACK_S
    assert put_backs() == before + 1
    # Cleaned up as after any delivery: not active, no lease kept alive.
    assert "job_k" not in ACTIVE.snapshot()
    assert not [k for k in RENEWER._keepers if k.job_id == "job_k"]


def test_a_put_back_keeps_the_start_of_a_job_that_made_attempts() -> None:
    attempt = {"provider": "p", "model": "pm", "outcome": "error"}
    store, _ = run(job(started_at=time.time() - 5, attempts=[attempt]))
    [(_, _, _, status, fields)] = store.deferred
    assert status == RETRYING and fields == {}  # it was retrying, and still is


def test_an_expired_job_of_an_unknown_kind_still_expires() -> None:
    store, concluded = run(job(deadline_at=time.time() - 1))
    assert store.deferred == []
    assert [o.status for o in concluded] == [EXPIRED]

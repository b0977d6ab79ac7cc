"""Admission with an Idempotency-Key when the job's creation fails: the key is given back when
no job was accepted, and kept while a job exists that Redis made but whose reply was lost
(the client's retry then gets that job instead of running the request again)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import fakeredis
import flask
import pytest
import redis

from gateway_api.admission import Admitted, admit
from shared.errors import GatewayUnavailable
from shared.keys import Keys
from shared.state.idempotency import IdempotencyKeys
from shared.state.job_record import Job, new_job_id
from shared.state.jobs import JobStore
from tests.support.jobs import queued_job

KEYS = Keys("gw")
BODY = {"messages": [{"role": "user", "content": "hi"}]}


def _request_then_retry(fails_with: Exception, makes_the_job: bool) -> tuple[list[str], Admitted]:
    """A request whose create raises ``fails_with`` (after making its job, or before), then the
    client's retry with the same Idempotency-Key. Returns the jobs made and the retry's answer."""
    client = fakeredis.FakeRedis(decode_responses=True)
    jobs = JobStore(client, KEYS, 3600)
    stores = SimpleNamespace(idempotency=IdempotencyKeys(client, KEYS, 3600), jobs=jobs)
    services = cast(Any, SimpleNamespace(stores=stores))
    principal = cast(Any, SimpleNamespace(key_id="k"))
    made: list[str] = []

    def create(job_id: str) -> Job:
        job = replace(queued_job(), id=job_id, owner="k")
        jobs.create(job)
        made.append(job_id)
        return job

    def failing(job_id: str) -> Job:
        if makes_the_job:
            create(job_id)
        raise fails_with

    with flask.Flask(__name__).test_request_context(headers={"Idempotency-Key": "abc"}):
        with pytest.raises(type(fails_with)):
            admit(services, principal, "/v1/chat/completions", BODY, new_job_id(), failing)
        again = admit(services, principal, "/v1/chat/completions", BODY, new_job_id(), create)
    return made, again


def test_a_job_made_before_redis_went_away_keeps_the_key_for_the_retry() -> None:
    made, again = _request_then_retry(redis.ConnectionError("lost reply"), makes_the_job=True)
    assert len(made) == 1
    assert again.replayed and again.job.id == made[0]


def test_a_create_that_redis_never_ran_gives_the_key_back() -> None:
    made, again = _request_then_retry(redis.ConnectionError("refused"), makes_the_job=False)
    assert not again.replayed and made == [again.job.id]


def test_a_job_refused_after_it_was_made_gives_the_key_back() -> None:
    # The publish failed: the client was told nothing was accepted (the job is marked failed),
    # so its retry makes a new job.
    made, again = _request_then_retry(GatewayUnavailable("no broker"), makes_the_job=True)
    assert len(made) == 2
    assert not again.replayed and again.job.id == made[1]

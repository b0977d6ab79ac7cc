"""``accept`` with an Idempotency-Key when the job's creation fails: the key is given back when
no job was accepted, and kept while a job exists that Redis made but whose reply was lost (the
client's retry then gets that job instead of running the request again)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from gateway_api.accept import accept
from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from gateway_api.submission import Accepted, Respond, Submission
from shared.chat_request import parse_chat
from shared.errors import GatewayUnavailable
from shared.state.job_record import FAILED, new_job_id
from tests.support.api import OK, make_app

ROUTE = "/v1/jobs"
OWNER = Principal("k", None)


def _submission(services: Services) -> Submission:
    return Submission(
        kind="chat",
        door="jobs",
        request=parse_chat(services.settings, dict(OK)),
        route=ROUTE,
        body=OK,
        priority="normal",
        deadline_s=60.0,
        respond=Respond.ASYNC,
        idempotency_key="abc",
    )


def _request_then_retry(
    fails_with: Exception, makes_the_job: bool
) -> tuple[Services, list[str], Accepted]:
    """A request whose creation raises ``fails_with`` (after making its job, or before), then
    the client's retry with the same Idempotency-Key. Returns the jobs made and the retry's
    answer."""
    services: Services = make_app().extensions["gateway"]
    jobs = services.stores.jobs
    made: list[str] = []
    real_create = jobs.create

    def failing(job: Any, *args: Any, **kwargs: Any) -> Any:
        if makes_the_job:
            real_create(job, *args, **kwargs)
            made.append(job.id)
        raise fails_with

    def create(job: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(job.id)
        return real_create(job, *args, **kwargs)

    sub = _submission(services)
    jobs.create = failing  # type: ignore[method-assign]
    with pytest.raises(type(fails_with)):
        accept(services, OWNER, sub, Notes(), new_job_id())
    jobs.create = create  # type: ignore[method-assign]
    return services, made, accept(services, OWNER, sub, Notes(), new_job_id())


def test_a_job_made_before_redis_went_away_keeps_the_key_for_the_retry() -> None:
    _, made, again = _request_then_retry(redis.ConnectionError("lost reply"), makes_the_job=True)
    assert len(made) == 1
    assert again.replayed and again.job is not None and again.job.id == made[0]


def test_a_create_that_redis_never_ran_gives_the_key_back() -> None:
    _, made, again = _request_then_retry(redis.ConnectionError("refused"), makes_the_job=False)
    assert again.job is not None
    assert not again.replayed and made == [again.job.id]


def test_a_job_refused_after_it_was_made_gives_the_key_back() -> None:
    # The publish failed: the client was told nothing was accepted (the job is marked failed),
    # so its retry makes a new job.
    services: Services = make_app().extensions["gateway"]
    sub = _submission(services)

    def no_broker(app: Any, job_id: str, priority: str) -> None:
        raise ConnectionError("no broker")

    services.publish = no_broker
    refused = new_job_id()
    with pytest.raises(GatewayUnavailable):
        accept(services, OWNER, sub, Notes(), refused)
    failed = services.stores.jobs.get(refused)
    assert failed is not None and failed.status == FAILED
    published: list[str] = []
    services.publish = lambda app, job_id, priority: published.append(job_id)
    again = accept(services, OWNER, sub, Notes(), new_job_id())
    assert again.job is not None and not again.replayed
    assert published == [again.job.id] and again.job.id != refused

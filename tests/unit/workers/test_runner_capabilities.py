"""The worker never lets an adapter change an answer behind the client's back: a deployment
that cannot honour the request is skipped before anything is counted against it; when none
can, the job fails with a 400 naming the field; an answer served in a lesser form says so and
is not stored in the cache."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from shared.config.loader import load_config
from shared.keys import Keys
from shared.state.breaker import Admission
from shared.state.job_record import FAILED, SUCCEEDED, Job
from shared.state.quota import QuotaGrant
from shared.wire.capabilities import FULL, ZAI, Capabilities
from workers.runner import JobRunner

MSG = [{"role": "user", "content": "hi"}]
ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class FakeAdapter:
    def __init__(self, name: str, caps: Capabilities) -> None:
        self.name, self.capabilities = name, caps
        self.calls: list[dict[str, Any]] = []

    def complete(self, body: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
        self.calls.append(body)
        return dict(ANSWER)


class Counted:
    """Quotas and breakers that record who was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def acquire(self, provider: Any, member: str) -> QuotaGrant:
        self.asked.append(f"quota:{provider.name}")
        return QuotaGrant(True, "ok", 0.0, member)

    def release(self, provider: Any, grant: QuotaGrant, called: bool) -> None:
        pass

    def allow(self, name: str, provider: str) -> Admission:
        self.asked.append(f"breaker:{name}")
        return Admission(True)


def runner(deployments: list[str]) -> tuple[JobRunner, dict[str, FakeAdapter], Counted]:
    doc: dict[str, Any] = {
        "providers": {
            "z-ai": {"type": "zai", "base_url": "http://z"},
            "oai": {"type": "openai", "base_url": "http://o"},
        },
        "models": {"m": [{"provider": p, "model": f"{p}-model"} for p in deployments]},
    }
    settings = load_config(env={}, overrides=doc).settings
    adapters = {"z-ai": FakeAdapter("z-ai", ZAI), "oai": FakeAdapter("oai", FULL)}
    counted = Counted()
    stores = SimpleNamespace(quotas=counted, breakers=counted, jobs=None)
    ctx: Any = SimpleNamespace(settings=settings, adapters=adapters, stores=stores, keys=Keys("gw"))
    return JobRunner(ctx), adapters, counted


def job(**request: Any) -> Job:
    body = {"model": "m", "messages": MSG, "temperature": 0, **request}
    now = time.time()
    return Job("job_1", "team", "running", "interactive", "m", body, now, now + 30)


def test_a_deployment_that_cannot_honour_is_skipped_without_being_counted() -> None:
    r, adapters, counted = runner(["z-ai", "oai"])
    outcome = r._execute(job(n=3), "tok", SimpleNamespace())  # type: ignore[arg-type]
    assert outcome.status == SUCCEEDED and outcome.fields["provider"] == "oai"
    assert adapters["z-ai"].calls == [] and len(adapters["oai"].calls) == 1
    assert counted.asked == ["quota:oai", "breaker:oai"]  # nothing asked of z-ai
    assert [a["provider"] for a in outcome.fields["attempts"]] == ["oai"]


def test_when_no_deployment_can_honour_the_job_fails_400_naming_the_field() -> None:
    for asked, param in (({"n": 3}, "n"), ({"logprobs": True}, "logprobs")):
        r, adapters, counted = runner(["z-ai"])
        outcome = r._execute(job(**asked), "tok", SimpleNamespace())  # type: ignore[arg-type]
        assert outcome.status == FAILED
        error = outcome.fields["error"]
        assert error["status"] == 400 and error["param"] == param
        assert error["type"] == "invalid_request_error"
        assert outcome.fields["attempts"] == [] and counted.asked == []
        assert adapters["z-ai"].calls == []


def test_a_degraded_answer_names_the_field_and_is_not_stored() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    r, _, _ = runner(["z-ai"])
    outcome = r._execute(job(response_format=fmt), "tok", SimpleNamespace())  # type: ignore[arg-type]
    assert outcome.status == SUCCEEDED
    assert outcome.fields["degraded_params"] == "response_format"
    assert not outcome.remember
    # The same request answered in full is stored, and names nothing.
    r, _, _ = runner(["oai"])
    outcome = r._execute(job(response_format=fmt), "tok", SimpleNamespace())  # type: ignore[arg-type]
    assert outcome.remember and "degraded_params" not in outcome.fields

"""The completion notice: a small outcome rides along, a large one leaves the record to read."""

from __future__ import annotations

import fakeredis

from gateway_api.waiter import CompletionHub
from shared.state import notice
from shared.state.job_record import encode_fields


def test_a_small_outcome_rides_along_and_reads_back_as_stored() -> None:
    fields = {"result": {"choices": [{"message": {"content": "hé"}}]}, "provider": "mock"}
    encoded = encode_fields(fields)
    msg = notice.encode("job_1", "succeeded", encoded)
    assert notice.job_id_of(msg) == "job_1"
    out = notice.outcome_of(msg)
    assert out == {"status": "succeeded", "provider": "mock", "result": encoded["result"]}


def test_a_large_result_sends_the_id_alone() -> None:
    encoded = encode_fields({"result": {"text": "x" * (notice.MAX_RESULT_BYTES + 1)}})
    msg = notice.encode("job_2", "succeeded", encoded)
    assert msg == "job_2"
    assert notice.outcome_of(msg) is None


def test_the_hub_keeps_an_outcome_only_for_a_job_waited_on_here() -> None:
    hub = CompletionHub(fakeredis.FakeRedis(decode_responses=True), "done")
    failed = encode_fields(
        {"error": {"message": "boom", "code": "provider_error"}, "degraded": True}
    )
    hub._wake(notice.encode("job_elsewhere", "failed", failed))
    assert hub.outcome("job_elsewhere") is None  # nobody here waits: nothing kept
    with hub.expect("job_3") as waiter:
        hub._wake(notice.encode("job_3", "failed", failed))
        assert waiter.event.is_set()
        job = hub.outcome("job_3")
        assert job is not None and job.status == "failed" and job.degraded
        assert job.error == {"message": "boom", "code": "provider_error"}
        assert job.raw_result is None
    assert hub.outcome("job_3") is None  # forgotten with its last waiter

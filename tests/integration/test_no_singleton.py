"""API + workers is a complete deployment: with no beat, parked retries resume on time, a
lost worker's jobs are recovered, and when the worker running the sweeps dies another takes
them over (docs/architecture.md "Processes": no singleton)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.keys import Keys
from shared.state.duty_lease import holder_of
from tests.support import web
from tests.support.stack import Proc, Stack, StackFactory, wait_for

KEYS = Keys("gw")
PARKED = 20


@pytest.fixture
def fleet(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    # Retry-After up to 30 s is waited out (not a fallback), as by default.
    s = make_stack("fleet", retry={"max_delay_s": 30})
    try:
        s.start_worker("w1", concurrency=50)
        s.start_worker("w2", concurrency=50)
        s.start_api()
        yield s
    finally:
        s.stop()


def chat(s: Stack, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return web.post(f"{s.api_url}/v1/chat/completions", json=body, timeout=timeout)


def job_of(s: Stack, resp: httpx.Response) -> dict[str, Any]:
    job_id = resp.headers["X-Gateway-Job-Id"]
    body: dict[str, Any] = web.get(f"{s.api_url}/v1/jobs/{job_id}").json()
    return body


def flaky(key: str, fail_times: int) -> dict[str, Any]:
    """A chat body whose first ``fail_times`` calls the mock answers 503."""
    return {
        "messages": [{"role": "user", "content": key}],
        "mock": {"status": 503, "fail_times": fail_times, "key": key},
    }


def duty_holder(s: Stack, duty: str) -> str | None:
    return holder_of(s.redis.get(KEYS.duty(duty)))


def holder_proc(s: Stack, duty: str) -> Proc:
    holder = wait_for(lambda: duty_holder(s, duty), 30, f"a worker to hold {duty}")
    pid = int(holder.rsplit(":", 1)[1])
    return next(p for p in s.procs if p.pid == pid)


def test_503_twice_then_200_finishes_with_three_calls_and_no_beat(
    fleet: Stack, unique: str
) -> None:
    assert not any(p.name == "beat" for p in fleet.procs)
    assert web.get(f"{fleet.api_url}/health/ready").json()["fleet_ready"] is True
    resp = chat(fleet, flaky(unique, 2))
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == f"mock answer to: {unique}"
    assert fleet.mock_calls(unique) == 3
    outcomes = [a["outcome"] for a in job_of(fleet, resp)["attempts"]]
    assert outcomes == ["error", "error", "success"]


def test_a_retry_after_of_2s_is_waited_out_before_the_next_call(fleet: Stack, unique: str) -> None:
    resp = chat(
        fleet,
        {
            "messages": [{"role": "user", "content": unique}],
            "mock": {"status": 429, "fail_times": 1, "key": unique, "retry_after": 2},
        },
    )
    assert resp.status_code == 200, resp.text
    first, second = job_of(fleet, resp)["attempts"]
    first_ended = first["started_at"] + first["duration_ms"] / 1000
    assert second["started_at"] - first_ended >= 2.0


def test_the_sweep_leader_killed_another_worker_takes_over_republishing_nothing_twice(
    fleet: Stack, unique: str
) -> None:
    victim = holder_proc(fleet, "sweep_due")
    # Parked retries that fall due while the leader is dead: only a new leader can move them.
    keys = [f"{unique}-{i}" for i in range(PARKED)]
    ids = []
    for key in keys:
        resp = web.post(
            f"{fleet.api_url}/v1/jobs",
            json={
                "request": {
                    "messages": [{"role": "user", "content": key}],
                    "mock": {"status": 503, "fail_times": 1, "key": key, "retry_after": 8},
                }
            },
        )
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    wait_for(lambda: all(fleet.mock_calls(k) == 1 for k in keys), 30, "every first call to fail")
    wait_for(lambda: fleet.redis.zcard(KEYS.due) == PARKED, 30, "every job parked for its retry")
    old = duty_holder(fleet, "sweep_due")
    victim.kill()
    killed_at = time.time()
    new = wait_for(
        lambda: (h := duty_holder(fleet, "sweep_due")) not in (None, old) and h, 30, "take-over"
    )
    takeover_s = time.time() - killed_at
    survivor = next(p for p in fleet.procs if p.name in ("w1", "w2") and p is not victim)
    assert new.endswith(f":{survivor.pid}")
    for job_id in ids:
        job = fleet.wait_job(job_id, {"succeeded", "failed"}, timeout=60)
        assert job["status"] == "succeeded", job
        assert [a["outcome"] for a in job["attempts"]] == ["error", "success"]
    assert all(fleet.mock_calls(k) == 2 for k in keys)
    logs = "".join(p.log_path.read_text(errors="replace") for p in fleet.procs)
    republished = [line for line in logs.splitlines() if "parked job republished" in line]
    for job_id in ids:  # each parked job moved back to the broker exactly once
        assert sum(job_id in line for line in republished) == 1, job_id
    # Every duty, not just the due mover, is now held by the survivor.
    for duty in ("sweep_leases", "sweep_pending", "health_check"):
        wait_for(lambda d=duty: duty_holder(fleet, d) == new, 30, f"{duty} taken over")
    print(f"sweep take-over {takeover_s:.2f}s after SIGKILL of the leader")
    assert takeover_s < 15


def test_a_stopped_leader_hands_its_duties_over_at_once(fleet: Stack) -> None:
    victim = holder_proc(fleet, "sweep_due")
    old = duty_holder(fleet, "sweep_due")
    victim.stop()  # SIGTERM: releases its leases on the way out
    wait_for(lambda: duty_holder(fleet, "sweep_due") not in (None, old), 15, "the hand-over")


def test_a_single_slot_worker_on_one_queue_runs_the_sweeps_too(
    make_stack: StackFactory,
    unique: str,
) -> None:
    s = make_stack("one-slot")
    try:
        s.start_worker("solo", concurrency=1, queues="gateway.interactive")
        s.start_api()
        resp = chat(s, flaky(unique, 1))
        assert resp.status_code == 200, resp.text
        assert s.mock_calls(unique) == 2
        assert duty_holder(s, "sweep_due") is not None
    finally:
        s.stop()


def test_an_optional_beat_changes_nothing(
    make_stack: StackFactory,
    unique: str,
) -> None:
    s = make_stack("with-beat")
    try:
        worker = s.start_worker("w", concurrency=20)
        s.start("beat", "beat")
        s.start_api()
        resp = chat(s, flaky(unique, 2))
        assert resp.status_code == 200, resp.text
        assert s.mock_calls(unique) == 3
        # The workers hold every duty; beat's triggers find them held and do nothing.
        for duty in ("sweep_due", "sweep_leases", "sweep_pending", "health_check"):
            assert duty_holder(s, duty) == f"{_host()}:{worker.pid}"
    finally:
        s.stop()


def _host() -> str:
    import socket

    return socket.gethostname()

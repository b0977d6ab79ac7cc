"""Streams when things go away: the worker dies mid-answer; the client leaves and the
operator asked for that to cancel the job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import web
from tests.support.clients import AUTH, CLIENT_KEY
from tests.support.stack import Stack, StackFactory, wait_for

H = {"Authorization": f"Bearer {CLIENT_KEY}"}
WORDS = " ".join(f"w{i}" for i in range(40))


@pytest.fixture
def stream_stack(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack(
        "streams",
        auth=AUTH,
        streaming={"ttl_s": 600, "cancel_on_disconnect": True},
    )
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


def data_events(lines: list[str]) -> list[str]:
    return [line[6:] for line in lines if line.startswith("data: ")]


def body(unique: str, delay_ms: int) -> dict[str, Any]:
    return {
        "model": "mock-model",
        "messages": [{"role": "user", "content": unique}],
        "stream": True,
        "mock": {"content": WORDS, "chunk_delay_ms": delay_ms, "key": unique},
    }


def test_a_worker_killed_mid_stream_ends_it_with_an_error_not_a_restart(
    stream_stack: Stack, unique: str
) -> None:
    worker = stream_stack.start_worker("doomed", concurrency=10)
    lines: list[str] = []
    with web.stream(
        "POST",
        f"{stream_stack.api_url}/v1/chat/completions",
        headers=H,
        json=body(unique, 200),
        timeout=60,
    ) as resp:
        assert resp.status_code == 200
        job_id = resp.headers["x-gateway-job-id"]
        for line in resp.iter_lines():
            lines.append(line)
            if len(data_events(lines)) == 4:
                worker.kill()  # SIGKILL, mid-answer
                stream_stack.start_worker("rescuer", concurrency=10)
            # the rest arrives from the redelivery's verdict
    events = data_events(lines)
    final = json.loads(events[-1])
    assert final["error"]["code"] == "stream_interrupted", events[-3:]
    text = "".join(
        (json.loads(e)["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for e in events[:-1]
    )
    assert WORDS.startswith(text)  # what the client got is a prefix: never restarted
    record = web.get(f"{stream_stack.api_url}/v1/jobs/{job_id}", headers=H).json()
    assert record["status"] == "failed"
    assert stream_stack.mock_calls(unique) == 1  # the answer was not asked for again


def test_a_client_that_leaves_cancels_the_job_when_configured(
    stream_stack: Stack, unique: str
) -> None:
    stream_stack.start_worker(concurrency=10)
    with web.stream(
        "POST",
        f"{stream_stack.api_url}/v1/chat/completions",
        headers=H,
        json=body(unique, 100),
        timeout=60,
    ) as resp:
        job_id = resp.headers["x-gateway-job-id"]
        lines: list[str] = []
        for line in resp.iter_lines():
            lines.append(line)
            if len(data_events(lines)) == 3:
                break
    wait_for(
        lambda: (
            web.get(f"{stream_stack.api_url}/v1/jobs/{job_id}", headers=H).json()["status"]
            == "cancelled"
        ),
        10,
        "the job to be cancelled",
    )

"""OpenAI's Batch API through the official openai client, against running API and worker
processes: every line answered once, line-numbered validation errors, cancel, expiry, a
worker SIGKILLed mid-batch, and fair share between two keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.batches import jsonl, line, submit, wait_status
from tests.support.clients import AUTH, CLIENT_KEY, OTHER_KEY
from tests.support.stack import Stack, StackFactory, wait_for


def _client(stack: Stack, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=60)


def wait_answered(client: openai.OpenAI, batch_id: str, n: int) -> None:
    def answered() -> bool:
        counts = client.batches.retrieve(batch_id).request_counts
        return counts is not None and counts.completed >= n

    wait_for(answered, 60, f"{n} lines of {batch_id} to be answered", interval=0.05)


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    return [json.loads(x) for x in client.files.content(file_id).read().splitlines()]


def test_a_batch_answers_every_line_once(stack: Stack, unique: str) -> None:
    client = _client(stack)
    # Answers spread over two seconds (line i takes 50*i ms), so the counts are seen moving.
    lines = [line(f"{unique}-{i}", f"q{i}", latency_ms=50 * i) for i in range(40)]
    lines[7] = line(f"{unique}-7", "bad", status=400, message="refused by the provider")
    batch = submit(client, lines)
    assert batch.status == "validating" and batch.object == "batch"
    assert batch.request_counts is not None and batch.endpoint == "/v1/chat/completions"

    seen: set[int] = set()

    def finished() -> Any:
        b = client.batches.retrieve(batch.id)
        assert b.request_counts is not None
        seen.add(b.request_counts.completed)
        return b if b.status == "completed" else None

    done = wait_for(finished, 120, "the batch to complete", interval=0.05)
    assert len(seen) > 2, f"request_counts never moved while it ran: {seen}"
    assert done.request_counts.total == 40
    assert done.request_counts.completed == 39 and done.request_counts.failed == 1
    assert done.in_progress_at and done.finalizing_at and done.completed_at

    out = read_lines(client, done.output_file_id)
    errors = read_lines(client, done.error_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(
        f"{unique}-{i}" for i in range(40) if i != 7
    )
    for o in out:
        assert o["error"] is None and o["response"]["status_code"] == 200
        assert o["response"]["body"]["object"] == "chat.completion"
        assert o["id"].startswith("batch_req_")
    i = int(out[0]["custom_id"].rsplit("-", 1)[1])
    assert f"q{i}" in json.dumps(out[0]["response"]["body"])  # each line got its own answer
    assert [e["custom_id"] for e in errors] == [f"{unique}-7"]
    assert errors[0]["response"]["status_code"] == 400
    assert "refused by the provider" in json.dumps(errors[0]["response"]["body"])

    assert batch.id in [b.id for b in client.batches.list(limit=100).data]
    other = _client(stack, OTHER_KEY)
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.cancel(batch.id)
    with pytest.raises(openai.NotFoundError):  # the output file is the owner's too
        other.files.retrieve(done.output_file_id)


def test_invalid_lines_fail_the_batch_with_their_line_numbers(stack: Stack, unique: str) -> None:
    client = _client(stack)
    good = line(f"{unique}-ok")
    lines: list[Any] = [
        good,
        b"{not json",
        line(f"{unique}-ok"),  # a custom_id used twice
        {**line(f"{unique}-3"), "url": "/v1/embeddings"},
        {**line(f"{unique}-4"), "body": {"messages": "nope"}},
        line(f"{unique}-5"),
    ]
    batch = submit(client, lines)
    done = wait_status(client, batch.id, {"failed"}, 60)
    assert done.errors is not None and done.failed_at
    by_line = {e.line: e for e in done.errors.data}
    assert sorted(by_line) == [2, 3, 4, 5]
    assert by_line[2].code == "invalid_json_line"
    assert by_line[3].code == "duplicate_custom_id"
    assert by_line[4].param == "url"
    assert by_line[5].param == "body.messages"
    assert done.request_counts.completed == 0 and not done.output_file_id

    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    f = client.files.create(file=("x.jsonl", jsonl([good])), purpose="batch")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=f.id,
            endpoint="/v1/chat/completions",
            completion_window="1h",  # type: ignore[arg-type]
        )


def test_cancel_keeps_the_finished_lines_and_stops_the_rest(stack: Stack, unique: str) -> None:
    client = _client(stack)
    n = 300
    batch = submit(client, [line(f"{unique}-{i}", latency_ms=300) for i in range(n)])
    wait_answered(client, batch.id, 1)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = wait_status(client, batch.id, {"cancelled"}, 60)
    out = read_lines(client, done.output_file_id)
    errors = read_lines(client, done.error_file_id)
    ids = [o["custom_id"] for o in out] + [e["custom_id"] for e in errors]
    assert sorted(ids) == sorted(f"{unique}-{i}" for i in range(n))  # each once
    assert 1 <= len(out) < n
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert done.request_counts.completed == len(out)
    with pytest.raises(openai.ConflictError):  # an ended batch cannot be cancelled again...
        finished = submit(client, [line(f"{unique}-after")])
        wait_status(client, finished.id, {"completed"}, 60)
        client.batches.cancel(finished.id)
    assert client.batches.cancel(batch.id).status == "cancelled"  # ...a cancelled one says so


@pytest.fixture(scope="module")
def short(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    """Batches with a 4 s window and a fair-share window of 4, two workers of 8 slots."""
    s = make_stack(
        "batch-short",
        auth=AUTH,
        batches={"window_s": 4},
        queue={"fair_window": 4},
    )
    try:
        s.start_worker("w1", concurrency=8)
        s.start_worker("w2", concurrency=8)
        s.start_api()
        yield s
    finally:
        s.stop()


def test_a_batch_past_its_window_expires_with_its_finished_lines(short: Stack, unique: str) -> None:
    client = _client(short)
    n = 200  # 16 slots x 4 s / 0.5 s: about 130 can finish at most
    batch = submit(client, [line(f"{unique}-{i}", latency_ms=500) for i in range(n)])
    assert batch.expires_at - batch.created_at == 4
    done = wait_status(client, batch.id, {"expired"}, 60)
    assert done.expired_at
    out = read_lines(client, done.output_file_id)
    errors = read_lines(client, done.error_file_id)
    assert sorted([o["custom_id"] for o in out] + [e["custom_id"] for e in errors]) == sorted(
        f"{unique}-{i}" for i in range(n)
    )
    assert 1 <= len(out) < n
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}


def test_fair_share_serves_a_small_batch_while_a_large_one_is_queued(
    short: Stack, unique: str
) -> None:
    big = _client(short, CLIENT_KEY)
    small = _client(short, OTHER_KEY)
    n = 400
    a = submit(big, [line(f"{unique}-a{i}", latency_ms=100) for i in range(n)])
    wait_status(big, a.id, {"in_progress"}, 30)
    b = submit(small, [line(f"{unique}-b{i}", latency_ms=100) for i in range(10)])
    done_b = wait_status(small, b.id, {"completed", "expired"}, 60)
    a_now = big.batches.retrieve(a.id)
    assert done_b.status == "completed" and done_b.request_counts.completed == 10
    # A's lines are mostly still queued: B did not wait for A's backlog.
    assert a_now.request_counts.completed < n / 2, a_now.request_counts


@pytest.fixture
def two_workers(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    # A SIGKILLed worker loses the messages it had taken (no kombu ack emulation): the pending
    # sweep finds their jobs within seconds (workers/reaper.py), with the default
    # queue.redeliver_after_s, far longer than this test waits.
    s = make_stack("batch-kill", auth=AUTH)
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


def test_a_worker_killed_mid_batch_loses_no_line(two_workers: Stack, unique: str) -> None:
    s = two_workers
    victim = s.start_worker("victim", concurrency=20)
    s.start_worker("survivor", concurrency=20)
    client = _client(s)
    n = 150
    batch = submit(client, [line(f"{unique}-{i}", latency_ms=150) for i in range(n)])
    wait_answered(client, batch.id, 20)
    os.kill(victim.pid, signal.SIGKILL)
    done = wait_status(client, batch.id, {"completed"}, 120)
    out = read_lines(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(f"{unique}-{i}" for i in range(n))
    assert done.request_counts.completed == n and not done.error_file_id


def test_the_cli_submits_follows_and_downloads(stack: Stack, unique: str, tmp_path: Any) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_bytes(jsonl([line(f"{unique}-{i}", latency_ms=50) for i in range(20)]))
    cli = [sys.executable, "-m", "gateway_cli.main", "batch", "submit", str(source), "--wait"]
    args = [*cli, "--url", stack.api_url, "--api-key", CLIENT_KEY, "--metadata", "team=cli"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "20/20" in done.stderr  # the progress bar reached the end
    assert "completed: 20 completed, 0 failed of 20" in done.stdout
    out = [json.loads(x) for x in (tmp_path / "prompts.output.jsonl").read_text().splitlines()]
    assert sorted(o["custom_id"] for o in out) == sorted(f"{unique}-{i}" for i in range(20))
    batch_id = done.stdout.split()[0]
    assert _client(stack).batches.retrieve(batch_id).metadata == {"team": "cli"}

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl([line(f"{unique}-ok"), b"{oops"]))
    failed = subprocess.run(
        [*cli[:-2], str(bad), "--wait", "--url", stack.api_url, "--api-key", CLIENT_KEY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "line 2: invalid_json_line" in failed.stderr


def test_a_line_answered_before_comes_from_the_response_cache(stack: Stack, unique: str) -> None:
    client = _client(stack)
    body_line = line(f"{unique}-a", f"cached {unique}", key=unique)
    body_line["body"]["temperature"] = 0  # deterministic: cacheable
    first = submit(client, [body_line])
    first = wait_status(client, first.id, {"completed"}, 60)
    calls = stack.mock_calls(unique)
    assert calls == 1
    again = submit(client, [{**body_line, "custom_id": f"{unique}-b"}])
    again = wait_status(client, again.id, {"completed"}, 60)
    [a] = read_lines(client, first.output_file_id)
    [b] = read_lines(client, again.output_file_id)
    assert b["response"]["body"] == a["response"]["body"]  # the same answer, stored
    assert stack.mock_calls(unique) == calls  # and no provider call for it

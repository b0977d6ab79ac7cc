"""Batches that hold with many tenants, through the official openai client against running API
and worker processes: a batch whose input file is deleted while it runs ends failed, naming
why; a cancelled batch whose input has blank lines stops every line and its counts stay final;
a running batch stays within its key's budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from shared.batch.batch_store import line_job_id
from tests.support.batches import line, submit, wait_status
from tests.support.clients import ADMIN_KEY, CLIENT_KEY, sha
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

BUDGET_KEY = "sk-batch-budget-" + "7" * 24
IN_PRICE, OUT_PRICE = 100, 10_000  # micro-USD per token
WORDS = "one two three four five"  # the mock's answer: 5 completion tokens
MESSAGES = [{"role": "user", "content": "hi there"}]  # the mock counts 2 prompt tokens
COST = 2 * IN_PRICE + 5 * OUT_PRICE  # what each line is charged
# What each line reserves: its prompt's JSON bytes at the input price, max_tokens at the output.
PROMPT_BYTES = len(json.dumps({"messages": MESSAGES}, separators=(",", ":")).encode())
RESERVATION = PROMPT_BYTES * IN_PRICE + 5 * OUT_PRICE
BUDGET = RESERVATION + 2 * COST  # room for three lines, one after another, never a fourth
TERMINAL = {"succeeded", "failed", "cancelled", "expired"}


@pytest.fixture(scope="module")
def limits(make_stack: StackFactory) -> Iterator[Stack]:
    """Two lines of a batch in flight at a time; a key with a budget; priced mock calls."""
    price = {"input_per_mtok": IN_PRICE, "output_per_mtok": OUT_PRICE}
    s = make_stack(
        "batch-limits",
        auth={
            "keys": [
                {"id": "team-a", "key_sha256": sha(CLIENT_KEY)},
                {
                    "id": "budget",
                    "key_sha256": sha(BUDGET_KEY),
                    "budget": {"usd": BUDGET / 1e6, "period": "total"},
                },
            ],
            "admin_keys": [{"id": "ops", "key_sha256": sha(ADMIN_KEY)}],
        },
        models={"mock-model": [{"provider": "mock", "model": "mock-model", "price": price}]},
        batches={"expand_ahead": 2},
    )
    try:
        s.start_worker(concurrency=8)
        s.start_api()
        yield s
    finally:
        s.stop()


def _client(stack: Stack, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=60)


def _lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    return [json.loads(x) for x in client.files.content(file_id).read().splitlines()]


def test_a_batch_whose_input_file_is_deleted_while_it_runs_ends_failed_naming_why(
    limits: Stack, unique: str
) -> None:
    client = _client(limits)
    batch = submit(client, [line(f"{unique}-{i}", latency_ms=1000) for i in range(20)])
    first = KEYS.job(line_job_id(batch.id, 1))
    wait_for(lambda: limits.redis.exists(first), 30, "the batch's first line to be a job")
    client.files.delete(batch.input_file_id)
    done = wait_status(client, batch.id, {"failed", "completed", "expired"}, 60)
    assert done.status == "failed" and done.failed_at
    assert done.errors is not None and done.errors.data
    error = done.errors.data[0]
    assert error.code == "input_file_deleted" and batch.input_file_id in (error.message or "")
    counts = done.request_counts
    assert counts is not None and 1 <= counts.completed < 20  # the lines in flight finished
    answered = _lines(client, done.output_file_id) + _lines(client, done.error_file_id)
    assert len(answered) == counts.completed + counts.failed


def test_a_cancelled_batch_with_blank_lines_stops_every_line_and_its_counts_stay(
    limits: Stack, unique: str
) -> None:
    client = _client(limits)
    lines: list[Any] = []
    for i in range(10):  # a blank line after each request: request i is line 2i + 1
        lines += [line(f"{unique}-{i}", latency_ms=5000), b""]
    batch = submit(client, lines)
    # The first step makes lines 1 and 3 jobs: 2 lines expanded, the second at line 3.
    second = KEYS.job(line_job_id(batch.id, 3))
    wait_for(lambda: limits.redis.exists(second), 30, "the batch's second line to be a job")
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = wait_status(client, batch.id, {"cancelled"}, 60)
    jobs = [KEYS.job(line_job_id(batch.id, 2 * i + 1)) for i in range(10)]

    def every_line_ended() -> bool:
        return all(limits.redis.hget(j, "status") in (None, *TERMINAL) for j in jobs)

    wait_for(every_line_ended, 30, "every line job to end")
    again = client.batches.retrieve(batch.id)
    assert again.request_counts == done.request_counts
    assert not limits.redis.exists(KEYS.batch_results(batch.id))
    errors = _lines(client, done.error_file_id)
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert len(errors) + len(_lines(client, done.output_file_id)) == 10


def test_a_running_batch_stays_within_its_keys_budget(limits: Stack, unique: str) -> None:
    client = _client(limits, BUDGET_KEY)
    body = {
        "model": "mock-model",
        "messages": MESSAGES,
        "max_tokens": 5,
        "mock": {"content": WORDS},
    }
    lines = [
        {
            "custom_id": f"{unique}-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": body,
        }
        for i in range(8)
    ]
    batch = submit(client, lines)
    done = wait_status(client, batch.id, {"completed", "failed", "expired"}, 60)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 5)
    refused = _lines(client, done.error_file_id)
    assert len(refused) == 5
    for r in refused:
        assert r["response"]["status_code"] == 429
        assert r["response"]["body"]["error"]["code"] == "budget_exceeded"
    budget = limits.redis.hgetall(KEYS.budget("budget"))
    assert int(budget["spent"]) == 3 * COST <= BUDGET
    assert int(budget.get("reserved") or 0) == 0

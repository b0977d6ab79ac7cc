"""`stream: true` through the queue: the official openai client's streaming iterator against
a running stack (gunicorn API, real worker processes, the mock provider over HTTP)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import openai
import pytest

from tests.support import web
from tests.support.clients import CLIENT_KEY
from tests.support.stack import Stack

H = {"Authorization": f"Bearer {CLIENT_KEY}"}
WORDS = "one two three four five six seven eight"


@pytest.fixture
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=CLIENT_KEY, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=30
    )


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    return dict(web.get(f"{stack.api_url}/v1/jobs/{job_id}?wait=20", headers=H, timeout=30).json())


def test_chunks_arrive_in_order_with_the_usage_chunk(
    client: openai.OpenAI, stack: Stack, unique: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock-model",
        messages=[{"role": "user", "content": unique}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"mock": {"content": WORDS, "chunk_delay_ms": 5, "key": unique}},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    job_id = raw.headers["x-gateway-job-id"]
    chunks = list(raw.parse())
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == WORDS
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(WORDS.split())
    assert all(c.usage is None for c in chunks[:-1])
    # The assembled message is stored like any other result.
    record = job(stack, job_id)
    assert record["status"] == "succeeded"
    assert record["result"]["object"] == "chat.completion"
    assert record["result"]["choices"][0]["message"]["content"] == WORDS
    assert record["result"]["usage"]["total_tokens"] > 0
    assert stack.mock_calls(unique) == 1


def test_without_include_usage_no_chunk_carries_usage(client: openai.OpenAI, unique: str) -> None:
    stream = client.chat.completions.create(
        model="glm-4.6",  # Z.ai's stream shape
        messages=[{"role": "user", "content": unique}],
        stream=True,
        extra_body={"mock": {"content": WORDS}},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == WORDS
    assert all(c.usage is None and c.choices for c in chunks)


def test_a_failed_attempt_before_the_first_chunk_is_invisible(
    client: openai.OpenAI, stack: Stack, unique: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock-model",
        messages=[{"role": "user", "content": unique}],
        stream=True,
        extra_body={
            "mock": {"content": WORDS, "status": 503, "fail_times": 1, "key": unique},
            "gateway": {"deadline_s": 30},
        },
    )
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == WORDS
    record = job(stack, raw.headers["x-gateway-job-id"])
    assert [a["outcome"] for a in record["attempts"]] == ["error", "success"]
    assert stack.mock_calls(unique) == 2


def test_a_final_error_before_any_chunk_is_a_plain_http_error(
    client: openai.OpenAI, unique: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": unique}],
            stream=True,
            extra_body={"mock": {"status": 400, "code": "invalid_thing", "key": unique}},
        )
    assert info.value.status_code == 400


@pytest.mark.parametrize("directive", ["stream_error_after", "stream_cut_after"])
def test_a_stream_broken_after_chunks_ends_in_an_error_and_a_failed_job(
    client: openai.OpenAI, stack: Stack, unique: str, directive: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock-model",
        messages=[{"role": "user", "content": unique}],
        stream=True,
        extra_body={"mock": {"content": WORDS, directive: 3, "key": unique}},
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for c in raw.parse():
            received.extend(c.choices[0].delta.content or "" for _ in [0] if c.choices)
    assert "".join(received) == "one two three"
    record = job(stack, raw.headers["x-gateway-job-id"])
    assert record["status"] == "failed"
    assert stack.mock_calls(unique) == 1  # chunks were out: no retry, no fallback


def events(lines: list[str]) -> list[tuple[str | None, str]]:
    """(id, data) of each SSE event in ``lines``."""
    out, event_id, data = [], None, []
    for line in lines:
        if not line:
            if data:
                out.append((event_id, "\n".join(data)))
            event_id, data = None, []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
    return out


def content_of(evs: list[tuple[str | None, str]]) -> str:
    text = ""
    for _, data in evs:
        if data != "[DONE]":
            for choice in json.loads(data).get("choices") or []:
                text += choice["delta"].get("content") or ""
    return text


def test_disconnect_then_reattach_from_the_start_or_a_last_event_id(
    stack: Stack, unique: str
) -> None:
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": unique}],
        "stream": True,
        "mock": {"content": WORDS, "chunk_delay_ms": 150},
    }
    lines: list[str] = []
    with web.stream(
        "POST", f"{stack.api_url}/v1/chat/completions", headers=H, json=body, timeout=30
    ) as resp:
        job_id = resp.headers["x-gateway-job-id"]
        for line in resp.iter_lines():
            lines.append(line)
            if len(events(lines)) == 3:
                break  # the client goes away mid-answer
    seen = events(lines)
    # The job runs to completion without its client.
    record = job(stack, job_id)
    assert record["status"] == "succeeded"
    assert record["result"]["choices"][0]["message"]["content"] == WORDS

    url = f"{stack.api_url}/v1/jobs/{job_id}/stream"
    whole = events(web.get(url, headers=H, timeout=30).text.splitlines())
    assert whole[-1][1] == "[DONE]" and content_of(whole) == WORDS
    assert [e for e in whole[:3]] == seen
    rest = events(
        web.get(url, headers={**H, "Last-Event-ID": str(seen[-1][0])}, timeout=30).text.splitlines()
    )
    assert content_of(seen) + content_of(rest) == WORDS
    assert rest == whole[3:]
    bad = web.get(url, headers={**H, "Last-Event-ID": "nope"})
    assert bad.status_code == 400


def test_reattach_while_it_is_still_streaming(stack: Stack, unique: str) -> None:
    accepted = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=H,
        json={
            "request": {
                "model": "mock-model",
                "messages": [{"role": "user", "content": unique}],
                "stream": True,
                "mock": {"content": WORDS, "chunk_delay_ms": 100},
            }
        },
    ).json()
    got = events(
        web.get(
            f"{stack.api_url}/v1/jobs/{accepted['id']}/stream", headers=H, timeout=30
        ).text.splitlines()
    )
    assert content_of(got) == WORDS and got[-1][1] == "[DONE]"


def test_a_cache_hit_streams_the_stored_answer(
    client: openai.OpenAI, stack: Stack, unique: str
) -> None:
    def ask() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-model",
            messages=[{"role": "user", "content": f"cached {unique}"}],
            temperature=0,
            stream=True,
            extra_body={"mock": {"content": WORDS, "key": unique}},
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return raw.headers["x-gateway-cache"], text

    assert ask() == ("miss", WORDS)
    assert ask() == ("hit", WORDS)
    assert stack.mock_calls(unique) == 1


def test_two_hundred_concurrent_streams(stack: Stack, unique: str) -> None:
    n = 200
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    client = openai.OpenAI(
        api_key=CLIENT_KEY,
        base_url=f"{stack.api_url}/v1",
        max_retries=0,
        timeout=120,
        http_client=httpx.Client(limits=httpx.Limits(max_connections=n), timeout=120),
    )

    def one(i: int) -> None:
        try:
            stream = client.chat.completions.create(
                model="mock-model",
                messages=[{"role": "user", "content": f"{unique} {i}"}],
                stream=True,
                extra_body={"mock": {"content": f"answer {i} {WORDS}", "chunk_delay_ms": 20}},
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            with lock:
                results.append(text)
        except BaseException as exc:  # noqa: BLE001 (collected and reported below)
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert errors == []
    assert sorted(results) == sorted(f"answer {i} {WORDS}" for i in range(n))

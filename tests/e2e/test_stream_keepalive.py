"""A streamed request whose first chunk takes several keep-alive periods (queued, a retry's
backoff, a model thinking): the connection carries SSE comments every ``streaming.keepalive_s``
so no proxy closes it as idle, and the answer arrives intact; a failure after that point is an
``error`` event the openai client raises as APIError."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.support import web
from tests.support.stack import Stack, StackFactory

KEEPALIVE_S = 0.5
FIRST_CHUNK_AFTER_MS = 3000  # six keep-alive periods
WORDS = "slow but whole"


@pytest.fixture(scope="module")
def slow_stack(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack(
        "keepalive",
        streaming={"keepalive_s": KEEPALIVE_S},
    )
    try:
        s.start_worker(concurrency=10)
        s.start_api()
        yield s
    finally:
        s.stop()


def test_a_slow_first_chunk_is_preceded_by_keepalives_and_arrives_intact(
    slow_stack: Stack, unique: str
) -> None:
    body = {
        "messages": [{"role": "user", "content": unique}],
        "stream": True,
        "mock": {"content": WORDS, "latency_ms": FIRST_CHUNK_AFTER_MS},
    }
    with web.stream(
        "POST", f"{slow_stack.api_url}/v1/chat/completions", json=body, timeout=60
    ) as resp:
        assert resp.status_code == 200
        lines = list(resp.iter_lines())
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    keepalives = [line for line in lines[:first_data] if line.startswith(": keep-alive")]
    assert len(keepalives) >= 2, lines[:first_data]
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"

    client = openai.OpenAI(api_key="x", base_url=f"{slow_stack.api_url}/v1", max_retries=0)
    stream = client.chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": f"{unique}-sdk"}],
        stream=True,
        extra_body={"mock": {"content": WORDS, "latency_ms": FIRST_CHUNK_AFTER_MS}},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == WORDS


def test_a_failure_after_keepalives_began_is_an_error_event(slow_stack: Stack, unique: str) -> None:
    client = openai.OpenAI(api_key="x", base_url=f"{slow_stack.api_url}/v1", max_retries=0)
    stream = client.chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": unique}],
        stream=True,
        extra_body={
            "mock": {"status": 400, "message": "bad thing", "latency_ms": FIRST_CHUNK_AFTER_MS}
        },
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "bad thing" in str(caught.value)

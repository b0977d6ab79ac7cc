"""The mock's fault directives: what the chaos tests lean on, checked without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from mock_provider import app as mock_app


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep the mock takes before answering, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(mock_app.time, "sleep", taken.append)
    return taken


def call(client: Client, mock: dict[str, object]) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "mock": mock}
    return client.post("/v1/chat/completions", json=body).status_code


def test_hang_times_hangs_only_the_first_calls_of_a_key(slept: list[float]) -> None:
    client = Client(mock_app.make_app(mock_app.MockState()))
    directive = {"key": "k", "hang_s": 60, "hang_times": 1, "latency_ms": 0}
    assert [call(client, directive) for _ in range(3)] == [200, 200, 200]
    assert slept == [60.0]  # the first call hung; the reruns answered at once
    # Another key has its own count.
    assert call(client, {**directive, "key": "other"}) == 200
    assert slept == [60.0, 60.0]


def test_hang_without_hang_times_hangs_every_call(slept: list[float]) -> None:
    client = Client(mock_app.make_app(mock_app.MockState()))
    for _ in range(2):
        assert call(client, {"key": "k", "hang_s": 2, "latency_ms": 500}) == 200
    assert slept == [2.5, 2.5]


def post(client: Client, path: str, **body: Any) -> Any:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return client.post(path, json={**base, **body})


def stream_events(resp: Any) -> list[dict[str, Any]]:
    events = [line[6:] for line in resp.get_data(as_text=True).splitlines() if line]
    return [json.loads(e) for e in events if e != "[DONE]"]


def test_logprobs_are_sent_in_each_stream_chunk_and_in_the_answer() -> None:
    client = Client(mock_app.make_app(mock_app.MockState()))
    asked = {"logprobs": True, "top_logprobs": 2, "mock": {"content": "a b"}}
    chunks = stream_events(post(client, "/v1/chat/completions", stream=True, **asked))
    tokens = [
        t["token"]
        for c in chunks
        for ch in c["choices"]
        for t in (ch.get("logprobs") or {}).get("content") or []
    ]
    assert tokens == ["a", " b"]
    first = next(ch["logprobs"] for c in chunks for ch in c["choices"] if ch.get("logprobs"))
    assert [t["token"] for t in first["content"][0]["top_logprobs"]] == ["a", "alt1"]
    answer = post(client, "/v1/chat/completions", **asked).get_json()
    assert [t["token"] for t in answer["choices"][0]["logprobs"]["content"]] == ["a", " b"]
    plain = post(client, "/v1/chat/completions", mock={"content": "a b"}).get_json()
    assert plain["choices"][0]["logprobs"] is None


def test_echo_request_answers_with_what_was_sent() -> None:
    client = Client(mock_app.make_app(mock_app.MockState()))
    answer = post(client, "/v1/chat/completions", seed=3, mock={"echo_request": True}).get_json()
    sent = json.loads(answer["choices"][0]["message"]["content"])
    assert sent["seed"] == 3 and "mock" not in sent


@pytest.mark.parametrize(
    "asked",
    [
        {"n": 2},
        {"logprobs": True},
        {"top_logprobs": 1},
        {"stop": ["a", "b"]},
        {"response_format": {"type": "json_schema", "json_schema": {}}},
    ],
)
def test_the_zai_path_refuses_what_zai_does_not_take(asked: dict[str, Any]) -> None:
    client = Client(mock_app.make_app(mock_app.MockState()))
    resp = post(client, "/api/paas/v4/chat/completions", **asked)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "1210"
    assert post(client, "/v1/chat/completions", **asked).status_code == 200

"""The mock's fault directives: what the chaos tests lean on, checked without a server."""

from __future__ import annotations

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

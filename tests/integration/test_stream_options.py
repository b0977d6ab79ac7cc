"""Streaming from an OpenAI-compatible endpoint that refuses ``stream_options`` (older Azure
api-versions, some compatible servers): the adapter streams again once without it and
remembers, and ``providers.<name>.stream_usage: false`` never sends it. Against the bundled
mock provider over HTTP (its ``reject_stream_options`` directive answers such a body 400)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.config.settings import ProviderSettings
from workers.providers.base import ProviderCallError
from workers.providers.openai_compat import OpenAICompatAdapter


def _adapter(mock_port: int, **settings: Any) -> OpenAICompatAdapter:
    return OpenAICompatAdapter(
        ProviderSettings(
            name="compat", type="openai", base_url=f"http://127.0.0.1:{mock_port}/v1", **settings
        )
    )


def _calls(mock_port: int, key: str) -> int:
    stats = httpx.get(f"http://127.0.0.1:{mock_port}/_mock/stats").json()
    return int(stats["by_key"].get(key, 0))


def _body(key: str, refuse: bool = True, **extra: Any) -> dict[str, Any]:
    mock = {"key": key, "content": "a b c", "reject_stream_options": refuse}
    return {"messages": [{"role": "user", "content": "hi"}], "stream": True, "mock": mock, **extra}


def _stream(adapter: OpenAICompatAdapter, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    chunks: list[dict[str, Any]] = []
    result = adapter.stream(body, "mock-model", 10, chunks.append)
    return result, len(chunks)


def test_an_endpoint_that_refuses_stream_options_is_streamed_again_without_them(
    mock_port: int, unique: str
) -> None:
    adapter = _adapter(mock_port)
    try:
        result, emitted = _stream(adapter, _body(unique))
        assert result["choices"][0]["message"]["content"] == "a b c" and emitted > 0
        assert _calls(mock_port, unique) == 2  # refused, then streamed without the field
        assert not result.get("usage")  # the endpoint reports none without it
        # Remembered for this endpoint: the next stream goes without it at once.
        _stream(adapter, _body(unique, stream_options={"include_usage": True}))
        assert _calls(mock_port, unique) == 3
    finally:
        adapter.close()


def test_an_endpoint_that_takes_stream_options_reports_usage(mock_port: int, unique: str) -> None:
    adapter = _adapter(mock_port)
    try:
        result, _ = _stream(adapter, _body(unique, refuse=False))
        assert result["usage"]["completion_tokens"] == 3 and _calls(mock_port, unique) == 1
    finally:
        adapter.close()


def test_stream_usage_off_never_sends_stream_options(mock_port: int, unique: str) -> None:
    adapter = _adapter(mock_port, stream_usage=False)
    try:
        body = _body(unique, stream_options={"include_usage": True})
        result, _ = _stream(adapter, body)
        assert result["choices"][0]["message"]["content"] == "a b c"
        assert _calls(mock_port, unique) == 1
    finally:
        adapter.close()


def test_any_other_refusal_is_not_sent_again(mock_port: int, unique: str) -> None:
    adapter = _adapter(mock_port)
    try:
        body = _body(unique)
        body["mock"].update(status=400, message="temperature: out of range")
        with pytest.raises(ProviderCallError) as info:
            _stream(adapter, body)
        assert info.value.status == 400 and _calls(mock_port, unique) == 1
    finally:
        adapter.close()

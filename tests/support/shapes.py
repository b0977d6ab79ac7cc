"""What strict clients require of every answer: the fields OpenAI's API reference marks
required on a chat.completion and a chat.completion.chunk."""

from __future__ import annotations

from typing import Any

# From OpenAI's OpenAPI document: CreateChatCompletionResponse, its choices and message;
# CreateChatCompletionStreamResponse and its choices.
COMPLETION = ("id", "object", "created", "model", "choices")
CHOICE = ("index", "message", "finish_reason", "logprobs")
MESSAGE = ("role", "content", "refusal")
CHUNK = ("id", "object", "created", "model", "choices")
CHUNK_CHOICE = ("index", "delta", "finish_reason")


def assert_completion(data: dict[str, Any]) -> None:
    assert all(k in data for k in COMPLETION), data
    assert data["object"] == "chat.completion" and isinstance(data["created"], int)
    assert data["choices"], data
    for choice in data["choices"]:
        assert all(k in choice for k in CHOICE), choice
        assert choice["finish_reason"], choice
        assert all(k in choice["message"] for k in MESSAGE), choice


def assert_chunk(data: dict[str, Any]) -> None:
    assert all(k in data for k in CHUNK), data
    assert data["object"] == "chat.completion.chunk" and isinstance(data["created"], int)
    for choice in data["choices"]:
        assert all(k in choice for k in CHUNK_CHOICE), choice

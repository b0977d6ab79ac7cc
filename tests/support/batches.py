"""Batch API helpers over the official openai client: input lines, a submitted batch, waits
on its status."""

from __future__ import annotations

import json
from typing import Any

import openai

from tests.support.stack import wait_for


def line(custom_id: str, content: str = "hi", **mock: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": content}],
    }
    if mock:
        body["mock"] = mock
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(lines: list[Any]) -> bytes:
    return b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)


def submit(client: openai.OpenAI, lines: list[Any], name: str = "in.jsonl") -> Any:
    f = client.files.create(file=(name, jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def wait_status(client: openai.OpenAI, batch_id: str, statuses: set[str], timeout: float) -> Any:
    def ended() -> Any:
        b = client.batches.retrieve(batch_id)
        return b if b.status in statuses else None

    return wait_for(ended, timeout, f"batch {batch_id} to be {statuses}", interval=0.2)

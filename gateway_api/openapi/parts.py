"""The pieces every path description uses: error answers, headers, parameters, links."""

from __future__ import annotations

from typing import Any

_ERRORS = {
    "400": "Invalid request (the OpenAI envelope names the `param`)",
    "401": "Missing or unknown API key",
    "403": "Not an admin key (admin paths), or the admin API has no keys configured",
    "404": "Unknown model or job",
    "409": "Conflict (a job that already ended; an Idempotency-Key still being accepted)",
    "413": "Body over `limits.max_body_bytes`; a file over `files.max_bytes`, or over what is "
    "left of the key's `files.max_bytes_per_key`",
    "422": "An Idempotency-Key reused with another body",
    "429": "Over this key's limits (`Retry-After`) or budget, the key's batches not yet ended "
    "at `batches.max_active_per_key`, or the provider's quota was exhausted",
    "502": "The provider failed",
    "503": "Queue full (`Retry-After`), no healthy provider, or the broker unreachable",
    "507": "The file store is full (`files.redis_max_bytes`)",
    "504": "The job's deadline passed (the job id is in the error)",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def answer(name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ref(name)}},
    }
    if headers:
        resp["headers"] = headers
    return resp


def errors(*codes: str) -> dict[str, Any]:
    return {c: answer("Error", _ERRORS[c]) for c in codes}


GATEWAY_HEADERS = {
    "X-Gateway-Job-Id": {"schema": {"type": "string"}, "description": "the job's id"},
    "X-Gateway-Provider": {"schema": {"type": "string"}, "description": "who answered"},
    "X-Gateway-Cache": {"schema": {"type": "string", "enum": ["hit", "stale", "miss"]}},
    "X-Gateway-Degraded-Params": {
        "schema": {"type": "string"},
        "description": "request fields the provider served in a lesser form (response_format: "
        "a json_schema sent as json_object with the schema in the system prompt)",
    },
    "x-ratelimit-remaining-requests": {"schema": {"type": "string"}},
    "X-Gateway-Cost-USD": {
        "schema": {"type": "string"},
        "description": "what the job's provider calls cost (USD; 0 for a cache hit; unknown "
        "when the deployment has no price)",
    },
    "x-gateway-budget-remaining-usd": {
        "schema": {"type": "string"},
        "description": "what is left of the API key's budget (keys with a budget)",
    },
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key and body within 24 h: the same job (and answer).",
}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
JOB_PATH = "#/paths/~1v1~1jobs~1{job_id}"
# What a client (and a stateful fuzzer) can do with the job a 202 returns.
JOB_LINKS = {
    "GetJob": {"operationRef": f"{JOB_PATH}/get", "parameters": {"job_id": "$response.body#/id"}},
    "StreamJob": {
        "operationRef": f"{JOB_PATH}~1stream/get",
        "parameters": {"job_id": "$response.body#/id"},
    },
    "CancelJob": {
        "operationRef": f"{JOB_PATH}/delete",
        "parameters": {"job_id": "$response.body#/id"},
    },
}
CHAT_EXAMPLE = {
    "model": "glm-4.6",
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.2,
    "gateway": {"priority": "interactive", "deadline_s": 60},
}
OPEN: dict[str, Any] = {"security": []}  # no key needed
SSE_CONTENT: dict[str, Any] = {"text/event-stream": {"schema": {"type": "string"}}}
SSE: dict[str, Any] = {
    "description": "`chat.completion.chunk` events (each with an `id:`), then `data: [DONE]`; "
    'a failure after the first chunk is an `{"error": ...}` event',
    "content": SSE_CONTENT,
}


def html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}

"""The chat, jobs, models, health and metrics paths."""

from __future__ import annotations

from typing import Any

from gateway_api.openapi.parts import (
    CHAT_EXAMPLE,
    GATEWAY_HEADERS,
    IDEMPOTENCY,
    JOB_ID,
    JOB_LINKS,
    OPEN,
    SSE,
    SSE_CONTENT,
    answer,
    errors,
    ref,
)


def core_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completion (enqueued, waited for)",
                "parameters": [
                    IDEMPOTENCY,
                    {
                        "name": "Prefer",
                        "in": "header",
                        "schema": {"type": "string", "enum": ["respond-async"]},
                        "description": "respond-async: 202 and the job instead of waiting",
                    },
                    {"name": "Cache-Control", "in": "header", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": ref("ChatCompletionRequest"),
                            "example": CHAT_EXAMPLE,
                        }
                    },
                },
                "responses": {
                    "200": {
                        **answer("ChatCompletion", "The provider's answer", GATEWAY_HEADERS),
                        "content": {
                            "application/json": {"schema": ref("ChatCompletion")},
                            **SSE_CONTENT,
                        },
                    },
                    "202": {
                        **answer("Job", "Accepted (Prefer: respond-async)"),
                        "links": JOB_LINKS,
                    },
                    **errors("400", "401", "404", "409", "413", "422", "429", "502", "503", "504"),
                },
            }
        },
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": ref("JobCreate"),
                            "example": {
                                "request": CHAT_EXAMPLE,
                                "priority": "batch",
                                "metadata": {"batch": "nightly-42"},
                            },
                        }
                    },
                },
                "responses": {
                    "202": {
                        **answer("Job", "Accepted; `Location: /v1/jobs/{id}`"),
                        "links": JOB_LINKS,
                    },
                    **errors("400", "401", "404", "409", "413", "422", "429", "503"),
                },
            },
            "get": {
                "summary": "This key's jobs, newest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": answer("JobList", "A page of jobs"), **errors("400", "401")},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job (long-poll with wait=N seconds)",
                "parameters": [
                    JOB_ID,
                    {"name": "wait", "in": "query", "schema": {"type": "number"}},
                ],
                "responses": {
                    "200": answer("Job", "The job"),
                    **errors("400", "401", "404", "503"),
                },
            },
            "delete": {
                "summary": "Cancel a job",
                "parameters": [JOB_ID],
                "responses": {
                    "202": answer("Job", "Cancelled"),
                    "200": answer("Job", "Already cancelled"),
                    **errors("401", "404", "409", "503"),
                },
            },
        },
        "/v1/jobs/{job_id}/stream": {
            "get": {
                "summary": "(Re)attach to a job's answer as Server-Sent Events",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "string", "pattern": r"^[0-9]{1,20}-[0-9]{1,20}$"},
                        "description": "resume after this event (the `id:` of an event)",
                    },
                ],
                "responses": {
                    "200": SSE,
                    **errors("400", "401", "404", "409", "502", "503", "504"),
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The configured models (OpenAI list format)",
                "responses": {"200": answer("ModelList", "Models"), **errors("401")},
            }
        },
        "/v1/health": {
            "get": {
                "summary": "Gateway, workers, providers, queues, uptime, metrics summary",
                "responses": {"200": answer("Status", "Status"), **errors("401")},
            }
        },
        "/health/live": {
            "get": {**OPEN, "summary": "Liveness", "responses": {"200": answer("Status", "Up")}}
        },
        "/health/ready": {
            "get": {
                **OPEN,
                "summary": "Readiness (Redis, broker, config); `degraded` with reasons",
                "responses": {
                    "200": answer("Status", "Ready"),
                    "503": answer("Status", "Not ready"),
                },
            }
        },
        "/metrics": {
            "get": {
                **OPEN,
                "summary": "Prometheus text format (behind metrics.token when set)",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **errors("401"),
                },
            }
        },
    }

"""``GET /openapi.json`` (OpenAPI 3, built with apispec from the marshmallow schemas that
validate the requests) and ``GET /docs`` (a browsable page of it). Neither needs a key."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from gateway_api import openapi_schemas as out
from gateway_api import schemas as inp

bp = Blueprint("openapi", __name__)

_ERRORS = {
    "400": "Invalid request (the OpenAI envelope names the `param`)",
    "401": "Missing or unknown API key",
    "403": "Not an admin key (admin paths), or the admin API has no keys configured",
    "404": "Unknown model or job",
    "409": "Conflict (a job that already ended; an Idempotency-Key still being accepted)",
    "413": "Body over `limits.max_body_bytes`; a file over `files.max_bytes`",
    "422": "An Idempotency-Key reused with another body",
    "429": "Over this key's limits (`Retry-After`), or the provider's quota was exhausted",
    "502": "The provider failed",
    "503": "Queue full (`Retry-After`), no healthy provider, or the broker unreachable",
    "507": "The file store is full (`files.redis_max_bytes`)",
    "504": "The job's deadline passed (the job id is in the error)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(name)}},
    }
    if headers:
        resp["headers"] = headers
    return resp


def _errors(*codes: str) -> dict[str, Any]:
    return {c: _json("Error", _ERRORS[c]) for c in codes}


_GATEWAY_HEADERS = {
    "X-Gateway-Job-Id": {"schema": {"type": "string"}, "description": "the job's id"},
    "X-Gateway-Provider": {"schema": {"type": "string"}, "description": "who answered"},
    "X-Gateway-Cache": {"schema": {"type": "string", "enum": ["hit", "stale", "miss"]}},
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
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key and body within 24 h: the same job (and answer).",
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB_PATH = "#/paths/~1v1~1jobs~1{job_id}"
# What a client (and a stateful fuzzer) can do with the job a 202 returns.
_JOB_LINKS = {
    "GetJob": {"operationRef": f"{_JOB_PATH}/get", "parameters": {"job_id": "$response.body#/id"}},
    "StreamJob": {
        "operationRef": f"{_JOB_PATH}~1stream/get",
        "parameters": {"job_id": "$response.body#/id"},
    },
    "CancelJob": {
        "operationRef": f"{_JOB_PATH}/delete",
        "parameters": {"job_id": "$response.body#/id"},
    },
}
_CHAT_EXAMPLE = {
    "model": "glm-4.6",
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.2,
    "gateway": {"priority": "interactive", "deadline_s": 60},
}
_OPEN: dict[str, Any] = {"security": []}  # no key needed
_SSE_CONTENT: dict[str, Any] = {"text/event-stream": {"schema": {"type": "string"}}}
_SSE: dict[str, Any] = {
    "description": "`chat.completion.chunk` events (each with an `id:`), then `data: [DONE]`; "
    'a failure after the first chunk is an `{"error": ...}` event',
    "content": _SSE_CONTENT,
}


def _paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completion (enqueued, waited for)",
                "parameters": [
                    _IDEMPOTENCY,
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
                            "schema": _ref("ChatCompletionRequest"),
                            "example": _CHAT_EXAMPLE,
                        }
                    },
                },
                "responses": {
                    "200": {
                        **_json("ChatCompletion", "The provider's answer", _GATEWAY_HEADERS),
                        "content": {
                            "application/json": {"schema": _ref("ChatCompletion")},
                            **_SSE_CONTENT,
                        },
                    },
                    "202": {
                        **_json("Job", "Accepted (Prefer: respond-async)"),
                        "links": _JOB_LINKS,
                    },
                    **_errors("400", "401", "404", "409", "413", "422", "429", "502", "503", "504"),
                },
            }
        },
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("JobCreate"),
                            "example": {
                                "request": _CHAT_EXAMPLE,
                                "priority": "batch",
                                "metadata": {"batch": "nightly-42"},
                            },
                        }
                    },
                },
                "responses": {
                    "202": {
                        **_json("Job", "Accepted; `Location: /v1/jobs/{id}`"),
                        "links": _JOB_LINKS,
                    },
                    **_errors("400", "401", "404", "409", "413", "422", "429", "503"),
                },
            },
            "get": {
                "summary": "This key's jobs, newest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _json("JobList", "A page of jobs"), **_errors("400", "401")},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job (long-poll with wait=N seconds)",
                "parameters": [
                    _JOB_ID,
                    {"name": "wait", "in": "query", "schema": {"type": "number"}},
                ],
                "responses": {
                    "200": _json("Job", "The job"),
                    **_errors("400", "401", "404", "503"),
                },
            },
            "delete": {
                "summary": "Cancel a job",
                "parameters": [_JOB_ID],
                "responses": {
                    "202": _json("Job", "Cancelled"),
                    "200": _json("Job", "Already cancelled"),
                    **_errors("401", "404", "409", "503"),
                },
            },
        },
        "/v1/jobs/{job_id}/stream": {
            "get": {
                "summary": "(Re)attach to a job's answer as Server-Sent Events",
                "parameters": [
                    _JOB_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "string", "pattern": r"^[0-9]{1,20}-[0-9]{1,20}$"},
                        "description": "resume after this event (the `id:` of an event)",
                    },
                ],
                "responses": {
                    "200": _SSE,
                    **_errors("400", "401", "404", "409", "502", "503", "504"),
                },
            }
        },
        **_file_paths(),
        **_batch_paths(),
        **_webhook_paths(),
        **_usage_paths(),
        **_dashboard_paths(),
        "/v1/models": {
            "get": {
                "summary": "The configured models (OpenAI list format)",
                "responses": {"200": _json("ModelList", "Models"), **_errors("401")},
            }
        },
        "/v1/health": {
            "get": {
                "summary": "Gateway, workers, providers, queues, uptime, metrics summary",
                "responses": {"200": _json("Status", "Status"), **_errors("401")},
            }
        },
        "/health/live": {
            "get": {**_OPEN, "summary": "Liveness", "responses": {"200": _json("Status", "Up")}}
        },
        "/health/ready": {
            "get": {
                **_OPEN,
                "summary": "Readiness (Redis, broker, config); `degraded` with reasons",
                "responses": {
                    "200": _json("Status", "Ready"),
                    "503": _json("Status", "Not ready"),
                },
            }
        },
        **_admin_paths(),
        "/metrics": {
            "get": {
                **_OPEN,
                "summary": "Prometheus text format (behind metrics.token when set)",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors("401"),
                },
            }
        },
    }


_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _batch_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/batches": {
            "post": {
                "summary": "Run a file of chat requests as a batch (OpenAI Batch API)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchCreate")}},
                },
                "responses": {
                    "200": _json("Batch", "The batch, validating"),
                    **_errors("400", "401", "404", "413", "503"),
                },
            },
            "get": {
                "summary": "The calling key's batches, newest first (`limit`, `after`)",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"))
                ],
                "responses": {"200": _json("BatchList", "Batches"), **_errors("400", "401")},
            },
        },
        "/v1/batches/{batch_id}": {
            "get": {
                "summary": "A batch, its status and request counts",
                "parameters": [_BATCH_ID],
                "responses": {"200": _json("Batch", "The batch"), **_errors("401", "404")},
            }
        },
        "/v1/batches/{batch_id}/cancel": {
            "post": {
                "summary": "Cancel a batch: unstarted lines stop, finished ones are kept",
                "parameters": [_BATCH_ID],
                "responses": {
                    "200": _json("Batch", "The batch, cancelling"),
                    **_errors("401", "404", "409"),
                },
            }
        },
    }


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _dashboard_paths() -> dict[str, dict[str, Any]]:
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/dashboard": {
            "get": {
                "summary": "The live status page (or its sign-in form); admin key or session",
                "responses": {"200": _html("The page")},
            }
        },
        "/dashboard/data": {
            "get": {
                "summary": "What the dashboard shows, as JSON (it polls this)",
                "responses": {
                    "200": {
                        "description": "The fleet's state",
                        "content": {"application/json": {}},
                    },
                    **_errors("401", "403"),
                },
            }
        },
        "/dashboard/jobs/{job_id}": {
            "get": {
                "summary": "A job as an operator sees it (any key's)",
                "parameters": [job_id],
                "responses": {"200": _json("Job", "The job"), **_errors("401", "403", "404")},
            }
        },
        "/dashboard/login": {
            "post": {
                "summary": "Sign in with an admin key (form field `key`): a session cookie",
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"key": {"type": "string"}}}
                        }
                    }
                },
                "responses": {"303": {"description": "Signed in"}, "401": _html("Refused")},
            }
        },
        "/dashboard/logout": {
            "post": {"summary": "Sign out", "responses": {"303": {"description": "Signed out"}}}
        },
    }


_DELIVERY_ID = {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _webhook_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/webhook_deliveries": {
            "get": {
                "summary": "The calling key's webhook deliveries, newest first",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"), ("status", "string"))
                ],
                "responses": {
                    "200": _json("WebhookDeliveryList", "Deliveries"),
                    **_errors("400", "401"),
                },
            }
        },
        "/v1/webhook_deliveries/{delivery_id}": {
            "get": {
                "summary": "One delivery: its event, status and every attempt",
                "parameters": [_DELIVERY_ID],
                "responses": {
                    "200": _json("WebhookDelivery", "The delivery"),
                    **_errors("401", "404"),
                },
            }
        },
        "/v1/webhook_deliveries/{delivery_id}/replay": {
            "post": {
                "summary": "Deliver the event again now",
                "parameters": [_DELIVERY_ID],
                "responses": {
                    "200": _json("WebhookDelivery", "The delivery, pending"),
                    **_errors("401", "404"),
                },
            }
        },
    }


def _usage_paths() -> dict[str, dict[str, Any]]:
    def query(group_default: str) -> list[dict[str, Any]]:
        return [
            {
                "name": "start",
                "in": "query",
                "schema": {"type": "string"},
                "description": "first UTC day, YYYY-MM-DD or Unix seconds (default: 30 days back)",
            },
            {
                "name": "end",
                "in": "query",
                "schema": {"type": "string"},
                "description": "last UTC day (default: today)",
            },
            {
                "name": "group_by",
                "in": "query",
                "schema": {
                    "type": "string",
                    "enum": ["model", "provider", "day", "key"],
                    "default": group_default,
                },
            },
        ]

    return {
        "/v1/usage": {
            "get": {
                "summary": "The calling key's spend and tokens, with its budget",
                "parameters": query("model"),
                "responses": {"200": _json("Usage", "Usage"), **_errors("400", "401")},
            }
        },
        "/admin/usage": {
            "get": {
                "summary": "Every key's spend and tokens (admin)",
                "parameters": [
                    *query("key"),
                    {"name": "key_id", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _json("Usage", "Usage"), **_errors("400", "401", "403")},
            }
        },
    }


_FILE_ID = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _file_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/files": {
            "post": {
                "summary": "Upload a file (OpenAI Files API; purpose `batch`)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "purpose"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "purpose": {"type": "string", "enum": ["batch"]},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("File", "The stored file"),
                    **_errors("400", "401", "413", "503", "507"),
                },
            },
            "get": {
                "summary": "The calling key's files, newest first (`limit`, `after`, `order`)",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"), ("order", "string"))
                ]
                + [{"name": "purpose", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json("FileList", "Files"), **_errors("400", "401")},
            },
        },
        "/v1/files/{file_id}": {
            "get": {
                "summary": "A file's object",
                "parameters": [_FILE_ID],
                "responses": {"200": _json("File", "The file"), **_errors("401", "404")},
            },
            "delete": {
                "summary": "Delete a file",
                "parameters": [_FILE_ID],
                "responses": {"200": _json("FileDeleted", "Deleted"), **_errors("401", "404")},
            },
        },
        "/v1/files/{file_id}/content": {
            "get": {
                "summary": "A file's content, as uploaded",
                "parameters": [_FILE_ID],
                "responses": {
                    "200": {
                        "description": "The content",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    **_errors("401", "404"),
                },
            }
        },
    }


_ADMIN_INVALID = {
    "422": _json(
        "Error",
        "The config it would make is invalid: `param` names the first field, `errors` all",
    )
}


def _admin_paths() -> dict[str, dict[str, Any]]:
    return {
        "/admin/config": {
            "get": {
                "summary": "The merged config (secrets redacted) with each value's source",
                "responses": {"200": _json("AdminConfig", "The config"), **_errors("401", "403")},
            },
            "patch": {
                "summary": "A JSON merge patch (RFC 7396) to the Redis layer, validated",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {
                            "schema": {"type": "object"},
                            "example": {"providers": {"z-ai": {"timeout_s": 30}}},
                        }
                    },
                },
                "responses": {
                    "200": _json("AdminConfig", "Stored as a new version; the merged config"),
                    **_errors("400", "401", "403", "409"),
                    **_ADMIN_INVALID,
                },
            },
        },
        "/admin/config/versions": {
            "get": {
                "summary": "The Redis layer's kept versions, newest first",
                "responses": {
                    "200": _json("AdminConfigVersions", "Versions"),
                    **_errors("401", "403"),
                },
            }
        },
        "/admin/config/rollback": {
            "post": {
                "summary": "Make an earlier version's layer current again (as a new version)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("AdminRollback"),
                            "example": {"version": 3},
                        }
                    },
                },
                "responses": {
                    "200": _json("AdminConfig", "Rolled back; the merged config"),
                    **_errors("400", "401", "403", "404", "409"),
                    **_ADMIN_INVALID,
                },
            }
        },
    }


@cache
def build_spec(version: str = "0.1.0") -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="llm-gateway",
        version=version,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "A queue-based gateway for Z.ai, OpenAI and OpenAI-compatible "
            "providers. Errors use the OpenAI envelope."
        },
    )
    for field, kind in (
        (inp.StrictFloat, ("number", None)),
        (inp.StrictInt, ("integer", None)),
        (inp.StrictBool, ("boolean", None)),
        (inp.Content, (None, None)),
        (inp.Stop, (None, None)),
        (inp.ToolChoice, (None, None)),
    ):
        plugin.map_to_openapi_type(field, *kind)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("ChatCompletionRequest", inp.ChatCompletionSchema),
        ("JobCreate", inp.JobCreateSchema),
        ("Error", out.ErrorSchema),
        ("ChatCompletion", out.ChatCompletionAnswerSchema),
        ("Job", out.JobSchema),
        ("JobList", out.JobListSchema),
        ("ModelList", out.ModelListSchema),
        ("File", out.FileSchema),
        ("FileList", out.FileListSchema),
        ("FileDeleted", out.FileDeletedSchema),
        ("BatchCreate", inp.BatchCreateSchema),
        ("Batch", out.BatchSchema),
        ("BatchList", out.BatchListSchema),
        ("WebhookDelivery", out.WebhookDeliverySchema),
        ("WebhookDeliveryList", out.WebhookDeliveryListSchema),
        ("Usage", out.UsageSchema),
        ("Status", out.StatusSchema),
        ("AdminConfig", out.AdminConfigSchema),
        ("AdminConfigVersions", out.AdminConfigVersionsSchema),
        ("AdminRollback", out.AdminRollbackSchema),
    ):
        spec.components.schema(name, schema=schema)
    for path, operations in _paths().items():
        spec.path(path=path, operations=operations)
    doc = spec.to_dict()
    doc["security"] = [{"bearer": []}]
    return doc


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>llm-gateway API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"><p>The API description is <a href="/openapi.json">/openapi.json</a>
(OpenAPI 3). This page renders it with Swagger UI when unpkg.com is reachable.</p></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>if (window.SwaggerUIBundle) {
  SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});
}</script></body></html>
"""


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> Response:
    return Response(_PAGE, mimetype="text/html")

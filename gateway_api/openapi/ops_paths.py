"""The dashboard, webhook deliveries, usage and admin paths."""

from __future__ import annotations

from typing import Any

from gateway_api.openapi.parts import answer, errors, html, ref


def dashboard_paths() -> dict[str, dict[str, Any]]:
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/dashboard": {
            "get": {
                "summary": "The live status page (or its sign-in form); admin key or session",
                "responses": {"200": html("The page")},
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
                    **errors("401", "403"),
                },
            }
        },
        "/dashboard/jobs/{job_id}": {
            "get": {
                "summary": "A job as an operator sees it (any key's)",
                "parameters": [job_id],
                "responses": {"200": answer("Job", "The job"), **errors("401", "403", "404")},
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
                "responses": {"303": {"description": "Signed in"}, "401": html("Refused")},
            }
        },
        "/dashboard/logout": {
            "post": {"summary": "Sign out", "responses": {"303": {"description": "Signed out"}}}
        },
    }


_DELIVERY_ID = {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}}


def webhook_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/webhook_deliveries": {
            "get": {
                "summary": "The calling key's webhook deliveries, newest first",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"), ("status", "string"))
                ],
                "responses": {
                    "200": answer("WebhookDeliveryList", "Deliveries"),
                    **errors("400", "401"),
                },
            }
        },
        "/v1/webhook_deliveries/{delivery_id}": {
            "get": {
                "summary": "One delivery: its event, status and every attempt",
                "parameters": [_DELIVERY_ID],
                "responses": {
                    "200": answer("WebhookDelivery", "The delivery"),
                    **errors("401", "404"),
                },
            }
        },
        "/v1/webhook_deliveries/{delivery_id}/replay": {
            "post": {
                "summary": "Deliver the event again now",
                "parameters": [_DELIVERY_ID],
                "responses": {
                    "200": answer("WebhookDelivery", "The delivery, pending"),
                    **errors("401", "404"),
                },
            }
        },
    }


def usage_paths() -> dict[str, dict[str, Any]]:
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
                "responses": {"200": answer("Usage", "Usage"), **errors("400", "401")},
            }
        },
        "/admin/usage": {
            "get": {
                "summary": "Every key's spend and tokens (admin)",
                "parameters": [
                    *query("key"),
                    {"name": "key_id", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": answer("Usage", "Usage"), **errors("400", "401", "403")},
            }
        },
    }


_ADMIN_INVALID = {
    "422": answer(
        "Error",
        "The config it would make is invalid: `param` names the first field, `errors` all",
    )
}


def admin_paths() -> dict[str, dict[str, Any]]:
    return {
        "/admin/config": {
            "get": {
                "summary": "The merged config (secrets redacted) with each value's source",
                "responses": {"200": answer("AdminConfig", "The config"), **errors("401", "403")},
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
                    "200": answer("AdminConfig", "Stored as a new version; the merged config"),
                    **errors("400", "401", "403", "409"),
                    **_ADMIN_INVALID,
                },
            },
        },
        "/admin/config/versions": {
            "get": {
                "summary": "The Redis layer's kept versions, newest first",
                "responses": {
                    "200": answer("AdminConfigVersions", "Versions"),
                    **errors("401", "403"),
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
                            "schema": ref("AdminRollback"),
                            "example": {"version": 3},
                        }
                    },
                },
                "responses": {
                    "200": answer("AdminConfig", "Rolled back; the merged config"),
                    **errors("400", "401", "403", "404", "409"),
                    **_ADMIN_INVALID,
                },
            }
        },
    }

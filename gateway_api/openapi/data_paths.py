"""The Files and Batch API paths."""

from __future__ import annotations

from typing import Any

from gateway_api.openapi.parts import answer, errors, ref

_FILE_ID = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}


def file_paths() -> dict[str, dict[str, Any]]:
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
                    "200": answer("File", "The stored file"),
                    **errors("400", "401", "413", "503", "507"),
                },
            },
            "get": {
                "summary": "The calling key's files, newest first (`limit`, `after`, `order`)",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"), ("order", "string"))
                ]
                + [{"name": "purpose", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": answer("FileList", "Files"), **errors("400", "401")},
            },
        },
        "/v1/files/{file_id}": {
            "get": {
                "summary": "A file's object",
                "parameters": [_FILE_ID],
                "responses": {"200": answer("File", "The file"), **errors("401", "404")},
            },
            "delete": {
                "summary": "Delete a file",
                "parameters": [_FILE_ID],
                "responses": {"200": answer("FileDeleted", "Deleted"), **errors("401", "404")},
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
                    **errors("401", "404"),
                },
            }
        },
    }


_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def batch_paths() -> dict[str, dict[str, Any]]:
    return {
        "/v1/batches": {
            "post": {
                "summary": "Run a file of chat requests as a batch (OpenAI Batch API)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("BatchCreate")}},
                },
                "responses": {
                    "200": answer("Batch", "The batch, validating"),
                    **errors("400", "401", "404", "413", "429", "503"),
                },
            },
            "get": {
                "summary": "The calling key's batches, newest first (`limit`, `after`)",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (("limit", "integer"), ("after", "string"))
                ],
                "responses": {"200": answer("BatchList", "Batches"), **errors("400", "401")},
            },
        },
        "/v1/batches/{batch_id}": {
            "get": {
                "summary": "A batch, its status and request counts",
                "parameters": [_BATCH_ID],
                "responses": {"200": answer("Batch", "The batch"), **errors("401", "404")},
            }
        },
        "/v1/batches/{batch_id}/cancel": {
            "post": {
                "summary": "Cancel a batch: unstarted lines stop, finished ones are kept",
                "parameters": [_BATCH_ID],
                "responses": {
                    "200": answer("Batch", "The batch, cancelling"),
                    **errors("401", "404", "409"),
                },
            }
        },
    }

"""The OpenAPI 3 document, built with apispec from the marshmallow schemas that validate the
requests (``shared.wire.chat_schema`` for the chat body, ``gateway_api.schemas`` for the
others) and describe the answers (``schemas``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway_api import schemas as inp
from gateway_api.openapi import schemas as out
from gateway_api.openapi.core_paths import core_paths
from gateway_api.openapi.data_paths import batch_paths, file_paths
from gateway_api.openapi.ops_paths import admin_paths, dashboard_paths, usage_paths, webhook_paths
from shared.wire import chat_schema as chat


def all_paths() -> dict[str, dict[str, Any]]:
    return {
        **core_paths(),
        **file_paths(),
        **batch_paths(),
        **webhook_paths(),
        **usage_paths(),
        **dashboard_paths(),
        **admin_paths(),
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
        (chat.StrictFloat, ("number", None)),
        (chat.StrictInt, ("integer", None)),
        (chat.StrictBool, ("boolean", None)),
        (chat.Content, (None, None)),
        (chat.Stop, (None, None)),
        (chat.ToolChoice, (None, None)),
    ):
        plugin.map_to_openapi_type(field, *kind)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("ChatCompletionRequest", chat.ChatCompletionSchema),
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
    for path, operations in all_paths().items():
        spec.path(path=path, operations=operations)
    doc = spec.to_dict()
    doc["security"] = [{"bearer": []}]
    return doc

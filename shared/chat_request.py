"""What a chat request asks for: the JSON body validated (``shared/wire/chat_schema.py``) and
bounded (``shared/request_bounds.py``), and the model resolved, the same way for
``POST /v1/chat/completions``, ``POST /v1/jobs`` and each line of a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from shared import request_bounds
from shared.config.settings import Settings
from shared.errors import InvalidRequest, ModelNotFound
from shared.wire import capabilities
from shared.wire.chat_schema import ChatCompletionSchema, first_error

_CHAT = ChatCompletionSchema()


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # forwarded to the provider (model resolved, no "gateway")
    model: str
    ext: dict[str, Any]  # the validated "gateway" extension


def parse_chat(settings: Settings, body: Any, param_prefix: str = "") -> ChatRequest:
    """``body`` validated, bounded and its model resolved, or ``InvalidRequest`` /
    ``ModelNotFound`` naming the parameter (under ``param_prefix``, e.g. ``request``)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", param=param_prefix or None)
    try:
        valid = _CHAT.load(body)
    except ValidationError as exc:
        param, message = first_error(exc.messages)
        full = f"{param_prefix}.{param}" if param_prefix else param
        raise InvalidRequest(f"{full}: {message}", param=full) from exc
    request_bounds.check(valid, settings.limits, param_prefix)
    model = valid.get("model") or settings.default_model
    if not model:
        raise InvalidRequest("model: a model is required", param="model")
    if model not in settings.models:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    forwarded = {k: v for k, v in body.items() if k != "gateway"}
    forwarded["model"] = model
    # No deployment of the model could honour it: refused here, before a job is made (the
    # worker checks again before each call, for a config changed in between).
    refused = capabilities.refusal(settings, model, forwarded)
    if refused is not None:
        param, message = refused
        full = f"{param_prefix}.{param}" if param_prefix else param
        raise InvalidRequest(
            f"{param_prefix}.{message}" if param_prefix else message,
            code="unsupported_parameter",
            param=full,
        )
    return ChatRequest(body=forwarded, model=model, ext=valid.get("gateway") or {})

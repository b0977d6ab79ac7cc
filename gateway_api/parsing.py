"""What a chat request asks for: the JSON body validated (marshmallow) and bounded, the
model resolved, the deadline checked, and the response-cache lookup its policy allows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from gateway_api import request_bounds
from gateway_api.auth import Principal
from gateway_api.schemas import ChatCompletionSchema, first_error
from gateway_api.services import Services
from shared import metrics
from shared.errors import InvalidRequest, ModelNotFound
from shared.state import fleet_stats
from shared.state.cache import Entry, policy
from shared.state.ratelimit import estimate_tokens
from shared.wire import capabilities

_CHAT = ChatCompletionSchema()


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # forwarded to the provider (model resolved, no "gateway")
    model: str
    ext: dict[str, Any]  # the validated "gateway" extension


def json_body() -> Any:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json", param=None)
    return body


def load_body(schema: Schema, body: Any = None) -> dict[str, Any]:
    """The JSON object body (the request's unless given) validated by ``schema``, or 400
    naming the first bad field."""
    body = json_body() if body is None else body
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        valid: dict[str, Any] = schema.load(body)
    except ValidationError as exc:
        param, message = first_error(exc.messages)
        raise InvalidRequest(f"{param}: {message}", param=param) from exc
    return valid


def parse_chat(services: Services, body: Any, param_prefix: str = "") -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", param=param_prefix or None)
    try:
        valid = _CHAT.load(body)
    except ValidationError as exc:
        param, message = first_error(exc.messages)
        full = f"{param_prefix}.{param}" if param_prefix else param
        raise InvalidRequest(f"{full}: {message}", param=full) from exc
    s = services.settings
    request_bounds.check(valid, s.limits, param_prefix)
    model = valid.get("model") or s.default_model
    if not model:
        raise InvalidRequest("model: a model is required", param="model")
    if model not in s.models:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    forwarded = {k: v for k, v in body.items() if k != "gateway"}
    forwarded["model"] = model
    # No deployment of the model could honour it: refused here, before a job is made (the
    # worker checks again before each call, for a config changed in between).
    refused = capabilities.refusal(s, model, forwarded)
    if refused is not None:
        param, message = refused
        full = f"{param_prefix}.{param}" if param_prefix else param
        raise InvalidRequest(
            f"{param_prefix}.{message}" if param_prefix else message,
            code="unsupported_parameter",
            param=full,
        )
    return ChatRequest(body=forwarded, model=model, ext=valid.get("gateway") or {})


def resolve_deadline(services: Services, asked: float | None) -> float:
    q = services.settings.queue
    if asked is None:
        return q.deadline_s
    if asked > q.max_deadline_s:
        raise InvalidRequest(
            f"deadline_s: must be at most {q.max_deadline_s:g}", param="deadline_s"
        )
    return asked


@dataclass(frozen=True)
class Intake:
    """A parsed request after the response-cache lookup."""

    chat: ChatRequest
    hit: Entry | None  # a fresh cached answer: no job needs to run
    tokens: int  # the tokens/min estimate a new job is charged


def intake(services: Services, principal: Principal, chat: ChatRequest) -> Intake:
    """Apply the cache policy (config, ``Cache-Control``, ``gateway.cache``) and look up."""
    pol = policy(
        services.settings.cache,
        chat.body,
        chat.ext.get("cache"),
        request.headers.get("Cache-Control"),
    )
    if not pol.store and chat.ext.get("cache") != "no-store":  # tell the worker
        chat = replace(chat, ext={**chat.ext, "cache": "no-store"})
    hit = None
    if pol.lookup:
        hit = services.stores.cache.fresh(principal.key_id, chat.body, pol.max_age_s)
        metrics.CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()
        if hit:
            services.stores.stats.add(fleet_stats.CACHE_HITS)
    return Intake(chat, hit, 0 if hit else estimate_tokens(chat.body))

"""What each provider type can honour of a chat request, so that no adapter changes an answer
behind the client's back.

A request's fields fall in three groups:

- fields that cannot change the answer (``user``, ``metadata``, ``service_tier``, ``store``,
  ...): an adapter may leave out those its provider does not take;
- fields that change the answer (``n`` > 1, ``logprobs`` / ``top_logprobs``, more stop
  sequences than the provider takes): a deployment whose provider cannot honour one is
  skipped for the next (``unhonoured``); when no deployment of the model can, the request is
  refused with a 400 naming the field (``refusal``: the API asks before making a job, the
  worker again before each call, for a config changed in between);
- one field served in a lesser form (``degraded``): ``response_format: json_schema`` on a
  provider with only ``json_object`` (Z.ai) is sent as ``json_object`` with the schema in the
  system prompt; the answer says so (``X-Gateway-Degraded-Params: response_format``) and is
  not stored in the response cache, so it never answers a request a provider could have
  honoured in full.

The API needs this without the adapters (it never builds one), so the table is here, by
provider ``type``; each adapter class names its row (``workers/providers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.config.settings import Settings

DEGRADED_HEADER = "X-Gateway-Degraded-Params"


@dataclass(frozen=True)
class Capabilities:
    choices: bool = True  # n > 1
    logprobs: bool = True  # logprobs / top_logprobs
    max_stop: int | None = None  # stop sequences taken (None: as many as the client may send)
    json_schema: bool = True  # response_format json_schema (else only json_object)


FULL = Capabilities()
ZAI = Capabilities(choices=False, logprobs=False, max_stop=1, json_schema=False)
_BY_TYPE = {"zai": ZAI}

# What each answer-changing field asks for, in a refusal's message.
_ASKS = {
    "n": "more than one choice",
    "logprobs": "token logprobs",
    "top_logprobs": "token logprobs",
    "stop": "this many stop sequences",
}


def for_type(provider_type: str) -> Capabilities:
    return _BY_TYPE.get(provider_type, FULL)


def unhonoured(caps: Capabilities, request: Mapping[str, Any]) -> str | None:
    """The first answer-changing field of ``request`` a provider with ``caps`` cannot
    honour, or None. Fields that ask for nothing (``n: 1``, ``logprobs: false``,
    ``top_logprobs: 0``, one stop sequence) are honoured by anyone."""
    n = request.get("n")
    if not caps.choices and isinstance(n, int) and n > 1:
        return "n"
    if not caps.logprobs:
        if request.get("logprobs") is True:
            return "logprobs"
        top = request.get("top_logprobs")
        if isinstance(top, int) and not isinstance(top, bool) and top > 0:
            return "top_logprobs"
    stop = request.get("stop")
    if caps.max_stop is not None and isinstance(stop, list) and len(stop) > caps.max_stop:
        return "stop"
    return None


def degraded(caps: Capabilities, request: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a provider with ``caps`` serves in a lesser form (named in the answer's
    ``X-Gateway-Degraded-Params``)."""
    fmt = request.get("response_format")
    if not caps.json_schema and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return ("response_format",)
    return ()


def refusal(settings: Settings, model: str, request: Mapping[str, Any]) -> tuple[str, str] | None:
    """(param, message) when no deployment of ``model`` can honour ``request``; None when
    one can (or the model has no deployment to judge by)."""
    params: list[tuple[str, str]] = []
    for dep in settings.models.get(model, ()):
        provider = settings.providers.get(dep.provider)
        if provider is None:
            continue
        param = unhonoured(for_type(provider.type), request)
        if param is None:
            return None
        params.append((param, dep.provider))
    if not params:
        return None
    param = params[0][0]
    providers = ", ".join(sorted({p for _, p in params}))
    return param, (
        f"{param}: no provider serving `{model}` supports {_ASKS[param]} ({providers}); "
        "send the request without it or use another model"
    )

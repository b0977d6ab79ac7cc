"""Z.ai (GLM) chat completions: ``POST {base_url}/chat/completions`` with a bearer key, where
the international platform's base URL is https://api.z.ai/api/paas/v4.

Differences from OpenAI handled here: temperature in [0, 1] (<= 0 means do_sample=false),
top_p in [0.01, 0.99], only max_tokens, response_format text|json_object (a json_schema is
sent as json_object with the schema in the system prompt), error bodies
``{"error": {"code": "1214", "message": ...}}`` with string business codes, answers without
``object``, and ``finish_reason: "sensitive"`` for blocked content.

What Z.ai cannot honour and that would change the answer (more than one choice, logprobs,
more than one stop word) is never dropped here: the worker skips this deployment for such a
request (``shared.wire.capabilities``). Only fields that ask for nothing are left out.
"""

from __future__ import annotations

import json
from typing import Any

from shared.wire import openai_shape
from shared.wire.capabilities import ZAI
from workers.providers.base import ProviderCallError
from workers.providers.openai_compat import OpenAICompatAdapter

# OpenAI fields Z.ai is known to reject or ignore, and that do not decide what the answer
# holds; dropped before the call.
_DROPPED = (
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "stream_options",
    "seed",
    "service_tier",
    "store",
    "metadata",
)


# Answer-changing fields with the value that asks for nothing: dropped when they have it.
_NO_ASK: dict[str, Any] = {"n": 1, "logprobs": False, "top_logprobs": 0}


def _schema_prompt(json_schema: dict[str, Any]) -> str:
    """The instruction that stands in for ``response_format: json_schema``."""
    name = json_schema.get("name")
    head = "Reply with one JSON object and nothing else. It must conform to this JSON Schema"
    head += f" (named {name!r})" if isinstance(name, str) and name else ""
    if isinstance(json_schema.get("description"), str):
        head += f", described as: {json_schema['description']}"
    schema = json.dumps(json_schema.get("schema") or {}, separators=(",", ":"), sort_keys=True)
    return f"{head}:\n{schema}"


def _with_system(messages: Any, text: str) -> list[Any]:
    """``messages`` (not changed) with ``text`` appended to the leading system message, or a
    system message of its own first."""
    out = list(messages) if isinstance(messages, list) else []
    first = out[0] if out else None
    if isinstance(first, dict) and first.get("role") == "system":
        content = first.get("content")
        if isinstance(content, str):
            out[0] = {**first, "content": f"{content}\n\n{text}" if content else text}
            return out
        if isinstance(content, list):
            out[0] = {**first, "content": [*content, {"type": "text", "text": text}]}
            return out
    return [{"role": "system", "content": text}, *out]


class ZaiAdapter(OpenAICompatAdapter):
    capabilities = ZAI

    def build_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = super().build_body(body, model)
        for name in _DROPPED:
            out.pop(name, None)
        for name, nothing in _NO_ASK.items():
            if name in out and (out[name] is None or out[name] == nothing):
                out.pop(name)
        temperature = out.get("temperature")
        if isinstance(temperature, (int, float)):
            if temperature <= 0:
                out.pop("temperature")
                out["do_sample"] = False
            elif temperature >= 1:
                out["temperature"] = 0.99
        top_p = out.get("top_p")
        if isinstance(top_p, (int, float)):
            out["top_p"] = min(0.99, max(0.01, float(top_p)))
        stop = out.get("stop")
        if isinstance(stop, list) and not stop:
            out.pop("stop")
        elif isinstance(stop, str):
            out["stop"] = [stop]
        if "max_completion_tokens" in out:
            mct = out.pop("max_completion_tokens")
            out.setdefault("max_tokens", mct)
        fmt = out.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            out["response_format"] = {"type": "json_object"}
            schema = fmt.get("json_schema")
            prompt = _schema_prompt(schema if isinstance(schema, dict) else {})
            out["messages"] = _with_system(out.get("messages"), prompt)
        user = out.pop("user", None)
        if isinstance(user, str) and 6 <= len(user) <= 128:
            out["user_id"] = user
        return out

    def stream_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = self.build_body(body, model)  # no stream_options: Z.ai sends usage at the end
        out["stream"] = True
        return out

    def normalize_chunk(self, chunk: dict[str, Any], model: str) -> dict[str, Any]:
        return self._openai_shape(chunk, model, "chat.completion.chunk")

    @staticmethod
    def _refuse_sensitive(data: dict[str, Any]) -> None:
        for choice in data.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason") == "sensitive":
                raise ProviderCallError(
                    "content_filter",
                    "the provider blocked the content",
                    status=200,
                    code="1301",
                )

    def normalize(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        return self._openai_shape(data, model, "chat.completion")

    def _openai_shape(self, data: dict[str, Any], model: str, kind: str) -> dict[str, Any]:
        """An answer or a chunk: blocked content refused; ``object``, ``id``, ``model`` set."""
        self._refuse_sensitive(data)
        data.setdefault("id", data.get("request_id") or "chatcmpl-zai")
        if kind == "chat.completion":
            return openai_shape.completion(data, model)
        return openai_shape.chunk(data, model)

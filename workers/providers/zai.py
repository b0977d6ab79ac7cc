"""Z.ai (GLM) chat completions: ``POST {base_url}/chat/completions`` with a bearer key, where
the international platform's base URL is https://api.z.ai/api/paas/v4.

Differences from OpenAI handled here: temperature in [0, 1] (<= 0 means do_sample=false),
top_p in [0.01, 0.99], one stop word, only max_tokens, response_format text|json_object,
error bodies ``{"error": {"code": "1214", "message": ...}}`` with string business codes,
answers without ``object``, and ``finish_reason: "sensitive"`` for blocked content.
"""

from __future__ import annotations

from typing import Any

from shared.wire import openai_shape
from workers.providers.base import ProviderCallError
from workers.providers.openai_compat import OpenAICompatAdapter

# OpenAI fields Z.ai is known to reject or ignore; dropped before the call.
_DROPPED = (
    "n",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "stream_options",
    "seed",
    "service_tier",
    "store",
    "metadata",
)


class ZaiAdapter(OpenAICompatAdapter):
    def build_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = super().build_body(body, model)
        for name in _DROPPED:
            out.pop(name, None)
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
        if isinstance(stop, list):
            if stop:
                out["stop"] = [stop[0]]
            else:
                out.pop("stop")
        elif isinstance(stop, str):
            out["stop"] = [stop]
        if "max_completion_tokens" in out:
            mct = out.pop("max_completion_tokens")
            out.setdefault("max_tokens", mct)
        fmt = out.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            out["response_format"] = {"type": "json_object"}
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

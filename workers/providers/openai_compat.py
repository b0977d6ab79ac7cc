"""Any OpenAI-compatible Chat Completions endpoint: OpenAI, a LiteLLM proxy, vLLM, Ollama."""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.settings import ProviderSettings
from workers.providers.base import ProviderCallError, error_message, parse_retry_after
from workers.providers.pool import ShardedClient

# Gateway-only fields never sent upstream.
_GATEWAY_FIELDS = ("gateway",)


class OpenAICompatAdapter:
    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.pool = ShardedClient(
            settings.max_connections, settings.http_shards, settings.timeout_s
        )
        self._headers = {"Content-Type": "application/json"}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"

    # -- hooks a provider-specific adapter overrides -----------------------------------------
    def build_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if k not in _GATEWAY_FIELDS}
        out["model"] = model
        return out

    def parse_error(self, resp: httpx.Response) -> ProviderCallError:
        try:
            payload: Any = resp.json()
        except ValueError:
            payload = None
        message, code = error_message(payload, resp.text[:500] or resp.reason_phrase)
        return ProviderCallError(
            kind="http",
            message=message,
            status=resp.status_code,
            code=code,
            retry_after=parse_retry_after(resp.headers),
        )

    def normalize(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        data.setdefault("object", "chat.completion")
        return data

    # -- the call ---------------------------------------------------------------------------
    def complete(self, body: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
        payload = json.dumps(self.build_body(body, model), separators=(",", ":"))
        try:
            resp = self.pool.pick().post(
                self.url,
                content=payload,
                headers=self._headers,
                timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            )
        except httpx.TimeoutException as exc:
            raise ProviderCallError("timeout", f"no answer within {timeout:.1f}s") from exc
        except httpx.TransportError as exc:
            raise ProviderCallError("connect", f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise self.parse_error(resp)
        try:
            data = resp.json()
        except ValueError as exc:
            raise ProviderCallError(
                "malformed", "the answer is not JSON", status=resp.status_code
            ) from exc
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            err = self.parse_error(resp)
            err.status = err.status if err.status and err.status >= 400 else None
            raise err
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProviderCallError(
                "malformed", "the answer has no choices list", status=resp.status_code
            )
        return self.normalize(data, model)

    def close(self) -> None:
        self.pool.close()

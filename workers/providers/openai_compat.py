"""Any OpenAI-compatible Chat Completions endpoint: OpenAI, a LiteLLM proxy, vLLM, Ollama."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx

from shared.config.settings import ProviderSettings
from shared.wire import fastjson, openai_shape
from shared.wire.capabilities import FULL, Capabilities
from shared.wire.chunks import Assembler
from workers.providers.base import ProviderCallError, error_message, parse_retry_after
from workers.providers.pool import ShardedClient
from workers.providers.sse import sse_data

log = logging.getLogger(__name__)
# Gateway-only fields never sent upstream.
_GATEWAY_FIELDS = ("gateway",)
# How an endpoint that does not take ``stream_options`` refuses a body carrying it.
_REFUSAL_STATUSES = (400, 422)


class OpenAICompatAdapter:
    # What it honours of a request (shared.wire.capabilities): everything OpenAI takes.
    capabilities: Capabilities = FULL

    def __init__(self, settings: ProviderSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.pool = ShardedClient(
            settings.max_connections, settings.http_shards, settings.timeout_s
        )
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "llm-gateway",
        }
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        # Whether streams ask for usage: the provider's ``stream_usage``, turned off for the
        # process's life the first time the endpoint refuses ``stream_options``.
        self.stream_usage = settings.stream_usage

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
        return openai_shape.completion(data, model)

    def stream_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = self.build_body(body, model)
        out["stream"] = True
        if not self.stream_usage:  # the endpoint takes no stream_options, the client's neither
            out.pop("stream_options", None)
            return out
        # Ask for usage (tokens are counted and corrected from it); the client gets the usage
        # chunk only if it asked (workers.stream_writer).
        out["stream_options"] = {**(out.get("stream_options") or {}), "include_usage": True}
        return out

    def normalize_chunk(self, chunk: dict[str, Any], model: str) -> dict[str, Any]:
        return openai_shape.chunk(chunk, model)

    # -- the call ---------------------------------------------------------------------------
    def complete(self, body: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
        payload = fastjson.dumps(self.build_body(body, model))
        try:
            resp = self.pool.post(
                self.url,
                payload,
                self._headers,
                httpx.Timeout(timeout, connect=min(10.0, timeout)),
            )
        except httpx.TimeoutException as exc:
            raise ProviderCallError("timeout", f"no answer within {timeout:.1f}s") from exc
        except httpx.TransportError as exc:
            raise ProviderCallError("connect", f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise self.parse_error(resp)
        try:
            data = fastjson.loads(resp.content)
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

    def stream(
        self,
        body: dict[str, Any],
        model: str,
        timeout: float,
        emit: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Call in streaming mode: ``emit`` each chunk as it arrives; return the assembled
        ``chat.completion``. A stream that ends before every choice has a finish_reason, or
        that carries an error event, raises ProviderCallError (after whatever was emitted).

        An endpoint that refuses ``stream_options`` (older Azure api-versions, some compatible
        servers) answers an error before any chunk: the call is sent once more without it,
        and this adapter sends it no more (``stream_usage`` off: no usage, so no tokens)."""
        sent = self.stream_body(body, model)
        try:
            return self._stream_once(sent, model, timeout, emit)
        except ProviderCallError as err:
            if not (self.stream_usage and _refuses_stream_options(err, sent)):
                raise
        self.stream_usage = False
        log.warning(
            "the provider refuses stream_options: streaming without them, so without usage "
            "(set stream_usage: false for it in config to skip the refused call)",
            extra={"provider": self.name},
        )
        return self._stream_once(self.stream_body(body, model), model, timeout, emit)

    def _stream_once(
        self,
        sent: dict[str, Any],
        model: str,
        timeout: float,
        emit: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        payload = json.dumps(sent, separators=(",", ":"))
        assembler = Assembler()
        try:
            with self.pool.pick().stream(
                "POST",
                self.url,
                content=payload,
                headers=self._headers,
                timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self.parse_error(resp)
                for data in sse_data(resp.iter_lines()):
                    if data.strip() == "[DONE]":
                        break
                    chunk = self._parse_chunk(data, resp.status_code)
                    chunk = self.normalize_chunk(chunk, model)
                    assembler.feed(chunk)
                    emit(chunk)
        except httpx.TimeoutException as exc:
            raise ProviderCallError("timeout", f"the stream stalled for {timeout:.1f}s") from exc
        except httpx.TransportError as exc:
            raise ProviderCallError("connect", f"{type(exc).__name__}: {exc}") from exc
        if not assembler.finished:
            raise ProviderCallError("malformed", "the stream ended without a finish_reason")
        return self.normalize(assembler.result(), model)

    @staticmethod
    def _parse_chunk(data: str, status: int) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ProviderCallError(
                "malformed", "a stream event is not JSON", status=status
            ) from exc
        if not isinstance(chunk, dict):
            raise ProviderCallError("malformed", "a stream event is not an object", status=status)
        if "error" in chunk and "choices" not in chunk:
            message, code = error_message(chunk, "the provider reported an error mid-stream")
            raise ProviderCallError("http", message, status=502, code=code)
        return chunk

    def close(self) -> None:
        self.pool.close()


def _refuses_stream_options(err: ProviderCallError, sent: dict[str, Any]) -> bool:
    """Whether ``err`` is the endpoint refusing the ``stream_options`` field ``sent`` had."""
    return (
        "stream_options" in sent
        and err.kind == "http"
        and err.status in _REFUSAL_STATUSES
        and "stream_options" in err.message
    )

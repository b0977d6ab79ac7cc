"""A bundled OpenAI- and Z.ai-shaped upstream with per-request latency and fault injection.

Paths: ``POST /v1/chat/completions`` (OpenAI shape) and ``POST /api/paas/v4/chat/completions``
(Z.ai shape: no ``object``, ``request_id``, string business codes in errors); ``GET .../models``;
``GET /_mock/stats`` (calls counted, total and per directive key); ``POST /_mock/reset``.

Directives ride in the request body as ``"mock": {...}`` (the OpenAI SDK's ``extra_body``):

- ``latency_ms``: answer after this long (default: the server's ``--latency-ms``).
- ``status`` (+ ``code``, ``message``, ``retry_after``): answer with this error.
- ``fail_times`` with ``key``: only the first N calls carrying this key fail; later ones succeed.
- ``fail_after`` with ``key``: the first N calls carrying this key succeed; later ones fail.
- ``hang_s``: sleep this long before answering (timeouts); with ``hang_times`` and ``key``,
  only the first N calls carrying this key hang (a call killed mid-flight, then a quick rerun).
- ``content``: the answer text; ``finish_reason``: override (e.g. Z.ai's ``sensitive``).
- ``malformed``: answer 200 with a body that is not a chat completion.
- ``chunk_delay_ms``: delay between stream chunks (``stream: true``).
- ``stream_cut_after``: a stream that stops after N content chunks (no finish_reason, no
  ``[DONE]``): a connection lost mid-answer.
- ``stream_error_after``: a stream that sends N content chunks, then an ``error`` event.
- ``reject_stream_options``: a body carrying ``stream_options`` is answered 400 naming it, as
  endpoints that do not take the field answer (older Azure api-versions).
- ``echo_request``: the answer text is the request body as received (without ``mock``), as
  compact JSON: what the gateway sent upstream.

On the OpenAI path ``logprobs: true`` (with ``top_logprobs``) is honoured: each word's token
logprob, in the answer or in each stream chunk, as OpenAI sends them. The Z.ai path answers
400 (code 1210) to what Z.ai does not take (``n`` > 1, ``logprobs``, ``top_logprobs``, more
than one stop word, a ``json_schema`` response_format), so a test sees the gateway never
sends them there.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]


class MockState:
    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self.calls = 0
        self.by_key: Counter[str] = Counter()
        self.lock = threading.Lock()

    def count(self, key: str | None) -> int:
        """Count a call; returns how many calls this key has made (1 for the first)."""
        with self.lock:
            self.calls += 1
            if key:
                self.by_key[key] += 1
                return self.by_key[key]
            return self.calls

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"calls": self.calls, "by_key": dict(self.by_key)}

    def reset(self) -> None:
        with self.lock:
            self.calls = 0
            self.by_key.clear()


def _json(
    start: StartResponse, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = json.dumps(body).encode()
    start(
        f"{status} {'OK' if status < 400 else 'ERROR'}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for msg in reversed(messages):
            if isinstance(msg, dict) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error_body(zai: bool, status: int, code: Any, message: str) -> dict[str, Any]:
    if zai:
        return {"error": {"code": str(code or status), "message": message}}
    return {"error": {"message": message, "type": "mock_error", "param": None, "code": code}}


def _token_logprob(text: str, top: int) -> dict[str, Any]:
    """One token's logprob entry, as OpenAI sends it (``top`` alternatives, the token first)."""
    alternatives = [text] + [f"alt{k}" for k in range(1, top)]
    return {
        "token": text,
        "logprob": -0.5,
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": t, "logprob": -0.5 - k, "bytes": list(t.encode())}
            for k, t in enumerate(alternatives[:top])
        ],
    }


def _logprobs(pieces: list[str], top: int | None) -> dict[str, Any] | None:
    """``choices[].logprobs`` for these text pieces, or None when not asked (``top`` None)."""
    if top is None:
        return None
    return {"content": [_token_logprob(p, top) for p in pieces], "refusal": None}


def _pieces(content: str) -> list[str]:
    """The answer as the stream sends it: word by word, each after the first with its space."""
    return [w if i == 0 else " " + w for i, w in enumerate(content.split(" "))]


def _zai_refuses(body: dict[str, Any]) -> str | None:
    """The field Z.ai does not take, if the request has one."""
    n, stop, fmt = body.get("n"), body.get("stop"), body.get("response_format")
    if isinstance(n, int) and n > 1:
        return "n"
    for name in ("logprobs", "top_logprobs"):
        if name in body:
            return name
    if isinstance(stop, list) and len(stop) > 1:
        return "stop"
    if isinstance(fmt, dict) and fmt.get("type") not in ("text", "json_object"):
        return "response_format"
    return None


def _completion(
    zai: bool,
    model: str,
    content: str,
    prompt: str,
    finish: str,
    logprobs: int | None = None,
) -> dict[str, Any]:
    prompt_tokens = max(1, len(prompt.split()))
    completion_tokens = max(1, len(content.split()))
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if zai:
        body["request_id"] = body["id"]
    else:
        body["object"] = "chat.completion"
        body["system_fingerprint"] = "mock"
        body["choices"][0]["logprobs"] = _logprobs(_pieces(content), logprobs)
    return body


def _stream(
    zai: bool,
    model: str,
    content: str,
    finish: str,
    delay_s: float,
    usage: bool,
    cut_after: int | None = None,
    error_after: int | None = None,
    prompt: str = "",
    logprobs: int | None = None,
) -> Iterable[bytes]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    words = content.split(" ")

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if not zai and delta.get("content"):
            choice["logprobs"] = _logprobs([delta["content"]], logprobs)
        body: dict[str, Any] = {
            "id": cid,
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
        }
        if not zai:
            body["object"] = "chat.completion.chunk"
        return f"data: {json.dumps(body)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""}, None)
    for i, word in enumerate(words):
        if i == cut_after:
            return
        if i == error_after:
            error = _error_body(zai, 500, "1234" if zai else "server_error", "mock stream failure")
            yield f"data: {json.dumps(error)}\n\n".encode()
            return
        if delay_s:
            time.sleep(delay_s)
        yield chunk({"content": word if i == 0 else " " + word}, None)
    yield chunk({}, finish)
    if usage:
        n = len(words)
        p = max(1, len(prompt.split()))  # counted as the non-streamed answer counts them
        tail = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": p, "completion_tokens": n, "total_tokens": n + p},
        }
        yield f"data: {json.dumps(tail)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def make_app(state: MockState) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "GET")
        zai = "/paas/" in path
        if path == "/_mock/stats":
            return _json(start, 200, state.stats())
        if path == "/_mock/reset" and method == "POST":
            state.reset()
            return _json(start, 200, {"ok": True})
        if path.endswith("/models") and method == "GET":
            return _json(
                start,
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}
                    ],
                },
            )
        if not path.endswith("/chat/completions") or method != "POST":
            return _json(start, 404, _error_body(zai, 404, "not_found", f"no route {path}"))
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return _json(start, 400, _error_body(zai, 400, "1210" if zai else None, "bad JSON"))
        directive = body.get("mock") if isinstance(body.get("mock"), dict) else {}
        nth = state.count(directive.get("key"))
        latency = float(directive.get("latency_ms", state.latency_ms)) / 1000
        hang_times = directive.get("hang_times")
        if hang_times is None or nth <= int(hang_times):
            latency += float(directive.get("hang_s", 0))
        if latency > 0:
            time.sleep(latency)
        status = directive.get("status")
        fail_times = directive.get("fail_times")
        fail_after = directive.get("fail_after")
        if fail_after is not None:
            failing = status is not None and nth > int(fail_after)
        else:
            failing = status is not None and (fail_times is None or nth <= int(fail_times))
        if failing:
            headers = []
            if directive.get("retry_after") is not None:
                headers.append(("Retry-After", str(directive["retry_after"])))
            message = str(directive.get("message") or f"mock failure {status}")
            code = int(str(status))
            return _json(
                start,
                code,
                _error_body(zai, code, directive.get("code"), message),
                headers,
            )
        if directive.get("reject_stream_options") and "stream_options" in body:
            message = "Unrecognized request argument supplied: stream_options"
            return _json(start, 400, _error_body(zai, 400, None, message))
        if directive.get("malformed"):
            data = b"<html>upstream proxy error</html>"
            start("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(data)))])
            return [data]
        refused = _zai_refuses(body) if zai else None
        if refused is not None:
            message = f"mock Z.ai: {refused} is not supported"
            return _json(start, 400, _error_body(zai, 400, "1210", message))
        model = str(body.get("model") or "mock-model")
        prompt = _last_user_text(body.get("messages"))
        content = str(directive.get("content") or f"mock answer to: {prompt[:200]}")
        if directive.get("echo_request"):
            sent = {k: v for k, v in body.items() if k != "mock"}
            content = json.dumps(sent, separators=(",", ":"), sort_keys=True)
        finish = str(directive.get("finish_reason") or "stop")
        top = body.get("top_logprobs")
        logprobs = (int(top) if isinstance(top, int) else 0) if body.get("logprobs") else None
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            delay = float(directive.get("chunk_delay_ms", 0)) / 1000
            start("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
            cut, err = directive.get("stream_cut_after"), directive.get("stream_error_after")
            return _stream(
                zai,
                model,
                content,
                finish,
                delay,
                usage,
                int(cut) if cut is not None else None,
                int(err) if err is not None else None,
                prompt,
                logprobs,
            )
        return _json(start, 200, _completion(zai, model, content, prompt, finish, logprobs))

    return app


def serve(host: str, port: int, latency_ms: float = 0.0) -> None:
    """Serve forever on gevent's WSGI server (the caller has monkey-patched)."""
    import socket

    from gevent.pywsgi import WSGIServer

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
    listener.bind((host, port))
    listener.listen(2048)
    server = WSGIServer(listener, make_app(MockState(latency_ms)), log=None, error_log=None)
    import signal

    import gevent

    # Ctrl-C and SIGTERM stop it quietly (gevent would print the KeyboardInterrupt).
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, server.stop)
    server.serve_forever()

"""The benchmarks' upstream: an aiohttp OpenAI-compatible chat endpoint, one process.

Every target (the gateway, Portkey, a LiteLLM proxy, the direct baseline) calls the same one,
so what differs between them is the target alone. It answers after ``--latency-ms`` (no CPU
spent waiting), serves ``GET /v1/models`` for health checks, and counts the calls in flight at
once: ``GET /stats`` gives ``{"calls": n, "in_flight": now, "max_in_flight": peak}`` and
``POST /stats/reset`` zeroes them.

Run: ``python bench/upstream.py --port 9000 [--latency-ms 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web


class Counters:
    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0


def make_app(latency_s: float) -> web.Application:
    counters = Counters()

    async def chat(request: web.Request) -> web.Response:
        counters.calls += 1
        counters.in_flight += 1
        counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        try:
            body = await request.json()
            if latency_s:
                await asyncio.sleep(latency_s)
            messages = body.get("messages") or [{}]
            prompt = str(messages[-1].get("content", ""))
            answer = {
                "id": f"chatcmpl-{counters.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "mock-model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"echo: {prompt[:64]}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
            }
            return web.json_response(answer)
        finally:
            counters.in_flight -= 1

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "mock-model", "object": "model"}]}
        )

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": counters.calls,
                "in_flight": counters.in_flight,
                "max_in_flight": counters.max_in_flight,
            }
        )

    async def reset(_: web.Request) -> web.Response:
        counters.calls = counters.max_in_flight = 0
        return web.Response(text=json.dumps({"ok": True}), content_type="application/json")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/models", models)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stats/reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    web.run_app(
        make_app(args.latency_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()

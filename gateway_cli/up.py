"""``llm-gateway up``: the whole stack in the foreground, as child processes.

- Redis: ``REDIS_URL`` if set; else the default 127.0.0.1:6379 if it answers; else an
  embedded one (data in ./var/redis).
- Providers: with no ``--config`` and no provider key in the environment (``ZAI_API_KEY``,
  ``OPENAI_API_KEY``, ``LITELLM_PROXY_URL``), the bundled mock provider and a demo config, so
  the first request works offline.
- Children: the API and one worker (which runs the fleet's sweeps itself: no beat).
  Ctrl-C or SIGTERM stops every child; if one dies, the rest
  are stopped too (a half-running stack hides failures).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import yaml

from gateway_cli.embedded_redis import EmbeddedRedis, answers, free_port
from shared.config import DEFAULT_REDIS_URL

PROVIDER_ENV = ("ZAI_API_KEY", "OPENAI_API_KEY", "LITELLM_PROXY_URL")
STOP_TIMEOUT_S = 10.0


def demo_config(mock_url: str) -> dict[str, object]:
    deployment = [{"provider": "mock", "model": "mock-model"}]
    return {
        "providers": {"mock": {"type": "mock", "base_url": mock_url, "timeout_s": 30}},
        "models": {"mock-model": deployment, "glm-4.6": deployment, "gpt-4o-mini": deployment},
        "default_model": "mock-model",
    }


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway_cli.main", *args], env=env)


def stop_all(children: list[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_S) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.time() + timeout
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_up(
    config_path: str | None,
    host: str,
    port: int,
    redis_port: int,
    concurrency: int | None,
    force_embedded: bool = False,
) -> int:
    var = Path("var")
    var.mkdir(exist_ok=True)
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    embedded: EmbeddedRedis | None = None
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if force_embedded or not env.get("REDIS_URL"):
            if not force_embedded and answers(DEFAULT_REDIS_URL):
                env["REDIS_URL"] = DEFAULT_REDIS_URL
                print(f"up: using the Redis at {DEFAULT_REDIS_URL}", flush=True)
            else:
                embedded = EmbeddedRedis(var / "redis", port=redis_port).start()
                env["REDIS_URL"] = embedded.url
                print(
                    f"up: started embedded Redis at {embedded.url} (data in var/redis)", flush=True
                )
        if config_path:
            env["GATEWAY_CONFIG_FILE"] = os.path.abspath(config_path)
        elif not any(env.get(name) for name in PROVIDER_ENV):
            mock_port = free_port()
            children.append(_spawn(["mock-provider", "--port", str(mock_port)], env))
            demo = var / "demo-config.yaml"
            demo.write_text(yaml.safe_dump(demo_config(f"http://127.0.0.1:{mock_port}/v1")))
            env["GATEWAY_CONFIG_FILE"] = str(demo.resolve())
            print(
                f"up: no provider key set; using the mock provider on port {mock_port} and {demo}",
                flush=True,
            )
        worker_args = ["worker"] + (["--concurrency", str(concurrency)] if concurrency else [])
        children.append(_spawn(worker_args, env))
        children.append(_spawn(["api", "--host", host, "--port", str(port)], env))
        print(f"up: API on http://{host}:{port} (Ctrl-C stops everything)", flush=True)
        while not stopping:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                print(
                    f"up: a child exited ({dead[0].args!r}); stopping the stack",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_all(children)
        if embedded is not None:
            embedded.stop()
        print("up: stopped", flush=True)

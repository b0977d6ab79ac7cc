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
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import yaml

from gateway_cli.console import Console, choose
from gateway_cli.embedded_redis import EmbeddedRedis, answers, free_port
from shared.config.defaults import DEFAULT_REDIS_URL

PROVIDER_ENV = ("ZAI_API_KEY", "OPENAI_API_KEY", "LITELLM_PROXY_URL")
STOP_TIMEOUT_S = 10.0


def demo_config(mock_url: str) -> dict[str, object]:
    deployment = [{"provider": "mock", "model": "mock-model"}]
    return {
        "providers": {"mock": {"type": "mock", "base_url": mock_url, "timeout_s": 30}},
        "models": {"mock-model": deployment, "glm-4.6": deployment, "gpt-4o-mini": deployment},
        "default_model": "mock-model",
    }


def _spawn(
    name: str, args: list[str], env: dict[str, str], console: Console
) -> subprocess.Popen[bytes]:
    """A child whose output (stdout and stderr) goes through the console, named."""
    child = subprocess.Popen(
        [sys.executable, "-m", "gateway_cli.main", *args],
        env={**env, "GATEWAY_PROCESS": name},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    console.pump(name, child.stdout)
    return child


def summary(console: Console, host: str, port: int, open_: bool) -> None:
    """The start-up lines: where everything is, and a first request to paste."""
    base = f"http://{host}:{port}"
    for what, url in (
        ("API", f"{base}/v1"),
        ("docs", f"{base}/docs"),
        ("dashboard", f"{base}/dashboard"),
        ("health", f"{base}/v1/health"),
        ("metrics", f"{base}/metrics"),
    ):
        console.say("up", f"{what:<9} {url}")
    auth = "" if open_ else ' -H "Authorization: Bearer $KEY"'
    console.say(
        "up",
        f"try:      curl -s {base}/v1/chat/completions{auth} -H 'Content-Type: application/json' "
        """-d '{"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}'""",
    )


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _open(env: dict[str, str]) -> bool:
    """Does the gateway run without client keys (the curl then needs none)?"""
    try:
        from shared.config.loader import load_config

        return not load_config(env.get("GATEWAY_CONFIG_FILE"), env).settings.keys_required
    except Exception:
        return False


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
    log_format: str = "auto",
) -> int:
    console = Console(choose(log_format, sys.stdout))
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
                console.say("up", f"using the Redis at {DEFAULT_REDIS_URL}")
            else:
                embedded = EmbeddedRedis(var / "redis", port=redis_port).start()
                env["REDIS_URL"] = embedded.url
                console.say("up", f"started embedded Redis at {embedded.url} (data in var/redis)")
        if config_path:
            env["GATEWAY_CONFIG_FILE"] = os.path.abspath(config_path)
        elif not any(env.get(name) for name in PROVIDER_ENV):
            mock_port = free_port()
            children.append(
                _spawn("mock", ["mock-provider", "--port", str(mock_port)], env, console)
            )
            demo = var / "demo-config.yaml"
            demo.write_text(yaml.safe_dump(demo_config(f"http://127.0.0.1:{mock_port}/v1")))
            env["GATEWAY_CONFIG_FILE"] = str(demo.resolve())
            console.say(
                "up", f"no provider key set: the bundled mock provider on port {mock_port} ({demo})"
            )
        worker_args = ["worker"] + (["--concurrency", str(concurrency)] if concurrency else [])
        children.append(_spawn("worker", worker_args, env, console))
        children.append(_spawn("api", ["api", "--host", host, "--port", str(port)], env, console))
        announced = False
        while not stopping:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                console.say("up", f"a child exited ({dead[0].args!r}); stopping the stack", "error")
                return 1
            if not announced and _answers(host, port):
                announced = True
                summary(console, host, port, _open(env))
                console.say("up", "ready (Ctrl-C stops everything)")
            time.sleep(0.2)
        return 0
    finally:
        stop_all(children)
        if embedded is not None:
            embedded.stop()
        console.say("up", "stopped")

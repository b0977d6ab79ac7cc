"""docker-compose.yml, Procfile and ``llm-gateway up``: every command they name exists, and the
Procfile and ``up`` really run the stack."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from gateway_cli.embedded_redis import free_port
from gateway_cli.main import build_parser
from tests.support import web
from tests.support.stack import KEYS, Stack, StackFactory, port_open, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_DEFAULT = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_compose_services_run_real_cli_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "api", "worker"} <= set(services)
    assert "beat" not in services  # API + workers is the whole deployment (no singleton)
    assert "--appendonly" in services["redis"]["command"]
    assert "noeviction" in services["redis"]["command"]
    assert "container_name" not in services["worker"]  # --scale worker=N needs that
    assert "ports" not in services["worker"]
    for name in ("api", "worker"):
        command = services[name]["command"]
        assert command[0] == "llm-gateway"
        args = build_parser().parse_args(command[1:])
        assert args.command == name
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_procfile_names_the_cli_processes() -> None:
    entries = procfile()
    assert set(entries) == {"web", "worker"}
    for name, line in entries.items():
        argv = shlex.split(_DEFAULT.sub(lambda m: m.group(2), line))
        assert argv[0] == "llm-gateway"
        args = build_parser().parse_args(argv[1:])
        assert args.command == {"web": "api"}.get(name, name)


def _env_without_providers() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "ZAI_API_KEY",
            "OPENAI_API_KEY",
            "LITELLM_PROXY_URL",
            "GATEWAY_CONFIG_FILE",
            "GATEWAY_CONFIG",
        )
    }
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


def _chat(port: int, text: str) -> str:
    client = openai.OpenAI(
        api_key="unused", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=30
    )
    answer = client.chat.completions.create(
        model="mock-model", messages=[{"role": "user", "content": text}]
    )
    return str(answer.choices[0].message.content)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"exited early:\n{log.read_text()[-3000:]}")
        try:
            body = web.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).json()
        except httpx.HTTPError:
            return False
        return body["status"] == "ready" and not body["degraded"]  # a worker heartbeats

    wait_for(ready, 60, "the stack to be ready", interval=0.3)


def _stop(proc: subprocess.Popen[bytes], sig: int) -> float:
    started = time.time()
    proc.send_signal(sig)
    proc.wait(30)
    return time.time() - started


def _no_process_left(marker: str) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return marker not in out


@pytest.mark.parametrize("log_format", ["auto", "text"])
def test_llm_gateway_up_runs_everything_and_ctrl_c_stops_it(
    tmp_path: Path, unique: str, log_format: str
) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway_cli.main",
                "up",
                "--port",
                str(port),
                "--embedded-redis",
                "--log-format",
                log_format,
            ],
            cwd=tmp_path,
            env=_env_without_providers(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(port, proc, log)
            assert _chat(port, unique) == f"mock answer to: {unique}"
            text = log.read_text()
            assert "embedded Redis" in text and "mock provider" in text
            assert (tmp_path / "var" / "redis" / "appendonly.aof").exists() or any(
                (tmp_path / "var" / "redis").glob("appendonly*")
            )
            took = _stop(proc, signal.SIGINT)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert took < 15, f"up took {took:.1f}s to stop"
    assert not port_open(port)
    wait_for(
        lambda: _no_process_left(str(tmp_path / "var" / "redis")),
        10,
        "the embedded redis-server to exit",
    )
    lines = log.read_text().splitlines()
    # No Celery banner, no root warning, no gevent warning: one event a line, each named.
    text = "\n".join(lines)
    for noise in ("SecurityWarning", "MonkeyPatchWarning", "--- ***** -----", "[tasks]"):
        assert noise not in text, noise
    if log_format == "auto":  # not a terminal: JSON lines, every one
        events = [json.loads(line) for line in lines]
        assert {"up", "api", "worker", "mock"} <= {e["process"] for e in events}
        assert events[-1] == {**events[-1], "process": "up", "msg": "stopped"}
    else:
        shape = re.compile(r"^\d\d:\d\d:\d\d (up|api|worker|lane|mock) +(info|warning) ")
        assert all(shape.match(line) for line in lines), [x for x in lines if not shape.match(x)]
        assert any(f"http://127.0.0.1:{port}/docs" in line for line in lines)
        assert any("try:      curl -s" in line for line in lines)
        assert any(f"http://127.0.0.1:{port}/dashboard" in line for line in lines)
        assert lines[-1].endswith("stopped")


def test_honcho_runs_the_procfile(tmp_path: Path, stack: Stack, unique: str) -> None:
    honcho = BIN / "honcho"
    if not honcho.exists():
        pytest.fail("honcho is a dev dependency; reinstall with pip install -e '.[dev]'")
    # A separate Redis database for this deployment, the shared mock as provider.
    config = dict(stack.config)
    config.pop("auth", None)
    config["redis"] = {"url": stack.redis_url.rsplit("/", 1)[0] + "/14", "prefix": "gw"}
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = _env_without_providers()
    env["GATEWAY_CONFIG_FILE"] = str(cfg)
    port = free_port()
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(honcho), "-f", str(ROOT / "Procfile"), "start", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_ready(port, proc, log)
            assert _chat(port, unique) == f"mock answer to: {unique}"
            took = _stop(proc, signal.SIGTERM)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert took < 15
    assert not port_open(port)


def test_api_exits_within_10s_of_sigterm_with_a_request_waiting(
    make_stack: StackFactory, unique: str
) -> None:
    # No worker: the sync request waits for a job nobody runs (deadline 60 s).
    s = make_stack("api-stop")
    try:
        api = s.start_api()
        ready = web.get(f"{s.api_url}/health/ready").json()
        assert ready["status"] == "ready" and ready["fleet_ready"] is False  # no worker yet

        def wait_for_answer() -> None:
            # The API is stopped under this request: the connection closing is expected.
            with contextlib.suppress(httpx.HTTPError):
                web.post(
                    f"{s.api_url}/v1/chat/completions",
                    timeout=90,
                    json={
                        "messages": [{"role": "user", "content": unique}],
                        "gateway": {"deadline_s": 60},
                    },
                )

        waiting = threading.Thread(target=wait_for_answer, daemon=True)
        waiting.start()
        wait_for(
            lambda: s.redis.zcard(KEYS.pending("interactive")) == 1, 10, "the job to be queued"
        )
        took = api.stop(timeout=20)
        assert took < 10, f"api took {took:.1f}s to stop"
        assert not port_open(s.api_port or 0)
    finally:
        s.stop()


def test_no_process_warns_that_gevent_patched_ssl_too_late(stack: Stack) -> None:
    # The session stack's gunicorn master, its gevent workers and the Celery worker have all
    # started and served by now.
    assert web.get(f"{stack.api_url}/health/live").status_code == 200
    assert {p.name for p in stack.procs} >= {"api", "worker"}
    for proc in stack.procs:
        text = proc.log_path.read_text(errors="replace")
        assert "MonkeyPatchWarning" not in text, (proc.name, text[:2000])

"""Real processes for integration, end-to-end and chaos tests: a redis-server, the mock
provider, Celery workers and the gunicorn API, each a subprocess of ``llm-gateway``, deployed
as docs/architecture.md "Processes" deploys them: API + workers, no beat (the workers run
every sweep themselves)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from gateway_cli.embedded_redis import free_port
from gateway_cli.lanes import split
from shared.keys import Keys
from tests.support import web

CLI = [sys.executable, "-m", "gateway_cli.main"]
# The same entry point as a worker that knows fewer job kinds (tests/support/older_worker.py).
OLDER_CLI = [sys.executable, str(Path(__file__).with_name("older_worker.py"))]
# Every stack's key scheme (its config's redis.prefix): tests build keys with it, as the
# gateway does (shared/keys.py).
KEYS = Keys("gw")
# The production default: a share of each worker's concurrency in its own interactive lane.
LANE = {"interactive_share": 0.1}
# The mock ignores it; the secrets test looks for it everywhere it must not be.
PROVIDER_SECRET = "sk-provider-secret-" + "p" * 24


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cli: list[str] = CLI
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            [*cli, *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (a gunicorn master and its workers, say)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` waits)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> float:
        """SIGTERM; returns the seconds it took to exit (SIGKILL after ``timeout``)."""
        started = time.time()
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if not self._log.closed:
            self._log.close()
        return time.time() - started

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Stack:
    """One gateway deployment: its own Redis database, config, and processes."""

    def __init__(self, base_dir: Path, redis_url: str, mock_port: int, **overrides: Any) -> None:
        self.dir = base_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.redis_url = redis_url
        self.mock_url = f"http://127.0.0.1:{mock_port}"
        self.procs: list[Proc] = []
        self.api_port: int | None = None
        self.config = self._config(overrides)
        self.config_path = self.dir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.env = dict(os.environ)
        self.env.pop("REDIS_URL", None)
        self.env.pop("CELERY_BROKER_URL", None)
        self.env["GATEWAY_CONFIG_FILE"] = str(self.config_path)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.redis.flushdb()

    def _config(self, overrides: dict[str, Any]) -> dict[str, Any]:
        mock = {
            "type": "mock",
            "base_url": f"{self.mock_url}/v1",
            "timeout_s": 30,
            "api_key": PROVIDER_SECRET,
        }
        zai = {
            "type": "zai",
            "base_url": f"{self.mock_url}/api/paas/v4",
            "timeout_s": 30,
            "api_key": PROVIDER_SECRET,
        }
        cfg: dict[str, Any] = {
            "providers": {"mock": mock, "backup": dict(mock), "z-ai": zai, "z-ai-auth": dict(zai)},
            "models": {
                "mock-model": [{"provider": "mock", "model": "mock-model"}],
                "glm-4.6": [{"provider": "z-ai", "model": "glm-4.6"}],
                "glm-auth": [{"provider": "z-ai-auth", "model": "glm-4.6"}],
                "with-fallback": [
                    {"provider": "mock", "model": "primary-model"},
                    {"provider": "backup", "model": "backup-model"},
                ],
            },
            "default_model": "mock-model",
            "redis": {"url": self.redis_url, "prefix": KEYS.prefix},
            "worker": {
                "lease_s": 2,
                "reaper_interval_s": 0.5,
                "heartbeat_s": 1,
                "shutdown_grace_s": 3,
                # One Celery process per worker, except where a test asks for the interactive
                # lane (the session stack, tests/integration/test_priorities.py): on these
                # 2-CPU machines a second process per worker doubles start-up and contention.
                "interactive_share": 0.0,
            },
            "queue": {"max_deliveries": 5},
            # Retries quick; breakers that never trip here (tests/integration/test_resilience.py
            # runs its own stacks with real thresholds), so one test's failures stay its own.
            "retry": {"base_delay_s": 0.1, "max_delay_s": 5},
            "breaker": {"consecutive_failures": 1000, "min_calls": 1000},
            "health": {"interval_s": 2, "timeout_s": 2},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        return cfg

    # -- processes -------------------------------------------------------------------------
    def start(self, name: str, *args: str, cli: list[str] = CLI) -> Proc:
        proc = Proc(name, list(args), self.env, self.dir, cli)
        self.procs.append(proc)
        return proc

    def worker_alive(self, pid: int) -> bool:
        prefix = self.config["redis"]["prefix"]
        return any(k.endswith(f":{pid}") for k in self.redis.scan_iter(match=f"{prefix}:worker:*"))

    def start_worker(
        self,
        name: str = "worker",
        concurrency: int = 100,
        wait: bool = True,
        metrics_port: int = 0,
        queues: str | None = None,
        older: bool = False,
    ) -> Proc:
        """``older``: a worker of an older version, that knows none of the job kinds
        (tests/support/older_worker.py); its interactive lane would be a current worker, so
        it runs without one (``queues``, or a config without the lane)."""
        extra = ["--metrics-port", str(metrics_port)] if metrics_port else []
        if queues:
            extra += ["--queues", queues]
        assert not (older and queues is None and self.lane_expected(concurrency)), "no lane"
        cli = OLDER_CLI if older else CLI
        proc = self.start(name, "worker", "--concurrency", str(concurrency), *extra, cli=cli)
        if wait:
            wait_for(
                lambda: self.worker_alive(proc.pid) or not proc.alive(), 30, f"{name} heartbeat"
            )
            assert proc.alive(), proc.tail()
            if queues is None and self.lane_expected(concurrency):
                wait_for(
                    lambda: any(self.worker_alive(c) for c in children(proc.pid)),
                    30,
                    f"{name}'s interactive lane heartbeat",
                )
        return proc

    def lane_expected(self, concurrency: int) -> bool:
        share = self.config.get("worker", {}).get("interactive_share", 0.1)
        return bool(split(concurrency, share)[1])

    def start_all(self) -> Stack:
        """A worker and the API: the whole deployment."""
        self.start_worker()
        self.start_api()
        return self

    def start_beat(self) -> Proc:
        """The optional beat (nothing depends on it; one test shows it changes nothing)."""
        return self.start("beat", "beat")

    def start_api(self, workers: int = 1) -> Proc:
        self.api_port = free_port()
        proc = self.start(
            "api",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.api_port),
            "--workers",
            str(workers),
        )
        wait_for(lambda: port_open(self.api_port or 0) or not proc.alive(), 30, "api port")
        assert proc.alive(), proc.tail()
        return proc

    @property
    def api_url(self) -> str:
        assert self.api_port, "start_api() first"
        return f"http://127.0.0.1:{self.api_port}"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every process at once, then wait for all of them (SIGKILL whatever is left
        after ``timeout``): a stack stops in the time its slowest process takes, not the sum."""
        for proc in self.procs:
            proc.terminate()
        deadline = time.time() + timeout
        for proc in reversed(self.procs):
            proc.stop(max(0.1, deadline - time.time()))
        self.procs.clear()
        self.redis.close()

    def wait_job(
        self,
        job_id: str,
        statuses: set[str],
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until its status is one of ``statuses``; returns the job."""

        def done() -> dict[str, Any] | None:
            job = web.get(f"{self.api_url}/v1/jobs/{job_id}", headers=headers or {}).json()
            return job if job["status"] in statuses else None

        job: dict[str, Any] = wait_for(done, timeout, f"job {job_id} to be {statuses}")
        return job

    def submit(
        self,
        key: str,
        latency_ms: int = 0,
        headers: dict[str, str] | None = None,
        hang_first_s: float = 0,
    ) -> str:
        """POST /v1/jobs for a prompt ``key`` (also the mock's call-count key); the job id.
        ``hang_first_s``: the first call hangs this long, a rerun answers at once (a worker
        killed mid-call, however slowly a loaded machine got there)."""
        mock: dict[str, Any] = {"latency_ms": latency_ms, "key": key}
        if hang_first_s:
            mock |= {"hang_s": hang_first_s, "hang_times": 1}
        resp = web.post(
            f"{self.api_url}/v1/jobs",
            json={"request": {"messages": [{"role": "user", "content": key}], "mock": mock}},
            headers=headers or {},
        )
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    # -- the mock --------------------------------------------------------------------------
    def mock_calls(self, key: str) -> int:
        stats = web.get(f"{self.mock_url}/_mock/stats").json()
        return int(stats["by_key"].get(key, 0))


# A test's own deployment: ``make_stack(name, **config sections)`` (the fixture in conftest).
StackFactory = Callable[..., Stack]

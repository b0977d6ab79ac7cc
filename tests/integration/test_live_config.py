"""Live config across a running fleet: a gunicorn API (two processes) and a worker process
pick up changes from the admin API, the CLI and an HTTP config source without a restart;
bad changes are refused while the old config serves on."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support import web
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY
from tests.support.stack import CLI, PROVIDER_SECRET, Stack, StackFactory, free_port, wait_for

CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# A long interval: changes through Redis must arrive by the pub/sub notice, not by polling.
SLOW_POLL = {"interval_s": 300, "http_source": None}


def chat(stack: Stack, model: str) -> httpx.Response:
    return web.post(
        f"{stack.api_url}/v1/chat/completions",
        headers=CLIENT,
        json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    )


def every_process_serves(stack: Stack, model: str, status: int, tries: int = 12) -> bool:
    """``tries`` requests on fresh connections (spread over the API's processes) all answer
    ``status``."""
    return all(chat(stack, model).status_code == status for _ in range(tries))


def log_count(stack: Stack, name: str, text: str) -> int:
    return sum(
        p.log_path.read_text(errors="replace").count(text) for p in stack.procs if p.name == name
    )


# Pub/sub channels are server-wide, not per database: this stack's own prefix keeps other
# stacks of the session (same server, same default prefix) off its channel.
P = "live"


def subscribers(stack: Stack) -> int:
    return int(stack.redis.execute_command("PUBSUB", "NUMSUB", f"{P}:config:changed")[1])


@pytest.fixture
def live(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack(
        "live",
        auth=AUTH,
        refresh=SLOW_POLL,
        redis={"prefix": P},
    )
    try:
        s.start_worker(concurrency=20)
        s.start_api(workers=2)
        # Every process listens for changes before the test makes one (two API, one worker).
        wait_for(lambda: subscribers(s) == 3, 20, "three processes on the change channel")
        yield s
    finally:
        s.stop()


def test_admin_changes_reach_every_process_at_once_and_bad_ones_are_refused(live: Stack) -> None:
    assert chat(live, "live-alias").status_code == 404
    patch = {"models": {"live-alias": [{"provider": "mock", "model": "live-model"}]}}
    resp = web.patch(f"{live.api_url}/admin/config", json=patch, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    assert PROVIDER_SECRET not in resp.text

    # Both API processes and the worker: a job for the new alias runs end to end.
    started = time.time()
    wait_for(lambda: every_process_serves(live, "live-alias", 200), 10, "the alias everywhere")
    assert time.time() - started < 10  # the notice, not the 300 s poll
    answer = chat(live, "live-alias")
    job = web.get(
        f"{live.api_url}/v1/jobs/{answer.headers['X-Gateway-Job-Id']}", headers=CLIENT
    ).json()
    assert job["config_version"] == version
    assert job["attempts"][0]["model"] == "live-model"
    wait_for(lambda: log_count(live, "api", "config: now version") >= 2, 10, "both API logs")
    assert log_count(live, "worker", "config: now version") >= 1

    # Refused at the door: 422 naming the field; nothing changes.
    bad = web.patch(
        f"{live.api_url}/admin/config",
        json={"providers": {"mock": {"timeout_s": 0}}},
        headers=ADMIN,
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "providers.mock.timeout_s"

    # Written around the admin API (a layer no process accepts): every process refuses it,
    # logs why, and serves on with the config it has.
    ghost = {**patch, "models": {"live-alias": [{"provider": "ghost", "model": "x"}]}}
    record = {"layer": ghost, "created_at": time.time(), "actor": "test", "note": "raw"}
    live.redis.hset(f"{P}:config:versions", "2", json.dumps(record))
    live.redis.set(f"{P}:config:current", 2)
    live.redis.set(f"{P}:config:seq", 2)
    live.redis.publish(f"{P}:config:changed", "2")
    wait_for(lambda: log_count(live, "worker", "change refused") >= 1, 10, "the worker's refusal")
    wait_for(lambda: log_count(live, "api", "change refused") >= 2, 10, "the APIs' refusals")
    assert every_process_serves(live, "live-alias", 200, tries=6)
    shown = web.get(f"{live.api_url}/admin/config", headers=ADMIN).json()
    assert shown["version"] == version
    assert "models.live-alias.0.provider" in shown["refused"]

    # Rollback to no Redis layer at all: the alias is gone everywhere.
    back = web.post(f"{live.api_url}/admin/config/rollback", json={"version": 0}, headers=ADMIN)
    assert back.status_code == 200, back.text
    wait_for(lambda: every_process_serves(live, "live-alias", 404), 10, "the alias gone")
    assert chat(live, "mock-model").status_code == 200


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "config", *args, "--config", str(stack.config_path)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_set_push_show_check_against_a_running_fleet(live: Stack, tmp_path: Any) -> None:
    done = cli(live, "set", 'models."cli.alias"', '[{"provider": "mock", "model": "cli-model"}]')
    assert done.returncode == 0, done.stderr
    wait_for(lambda: every_process_serves(live, "cli.alias", 200), 10, "the CLI's alias")

    bad = cli(live, "set", "queue.deadline_s", "999999")
    assert bad.returncode == 1 and "queue.deadline_s" in bad.stderr

    layer = tmp_path / "layer.yaml"
    layer.write_text("models:\n  pushed: [{provider: backup, model: pushed-model}]\n")
    assert cli(live, "push", str(layer)).returncode == 0
    wait_for(lambda: every_process_serves(live, "pushed", 200), 10, "the pushed alias")
    assert chat(live, "cli.alias").status_code == 404  # push replaces the layer whole

    shown = cli(live, "show")
    assert shown.returncode == 0 and PROVIDER_SECRET not in shown.stdout + shown.stderr
    body = json.loads(shown.stdout)
    assert body["sources"]["models.pushed"] == "redis"
    assert body["config"]["providers"]["mock"]["api_key"] == "***"
    checked = cli(live, "check")
    assert checked.returncode == 0 and "Redis layer v2" in checked.stdout


class ConfigApi:
    """A stand-in for an operator's HTTP config service: serves ``layer`` to the right token."""

    def __init__(self) -> None:
        self.layer: dict[str, Any] = {}
        self.status = 200
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                ok = self.headers.get("Authorization") == "Bearer cfg-token"
                status = api.status if ok else 401
                body = json.dumps(api.layer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_http_source_is_polled_and_its_last_answer_kept(
    make_stack: StackFactory,
) -> None:
    source = ConfigApi()
    refresh = {
        "interval_s": 1,
        "http_source": {"url": f"http://127.0.0.1:{source.port}/layer", "token": "cfg-token"},
    }
    s = make_stack("http-config", refresh=refresh)
    try:
        s.start_worker(concurrency=10)
        s.start_api()
        assert chat(s, "http-alias").status_code == 404
        source.layer = {"models": {"http-alias": [{"provider": "mock", "model": "h"}]}}
        wait_for(lambda: chat(s, "http-alias").status_code == 200, 10, "the polled alias")
        source.status = 503  # the config API fails: its last answer stays in force
        time.sleep(2.5)
        assert chat(s, "http-alias").status_code == 200
        assert s.procs[0].alive() and s.procs[1].alive()
    finally:
        s.stop()
        source.close()

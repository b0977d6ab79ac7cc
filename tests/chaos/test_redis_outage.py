"""Redis killed mid-run (AOF ``appendfsync always``) and restarted on the same port: while it
is down every route answers 503 in the OpenAI envelope (never 500); every job accepted before
the kill finishes with its own answer; new work is served without restarting any process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_cli.embedded_redis import EmbeddedRedis
from tests.support import web
from tests.support.stack import Stack, wait_for

ASYNC_JOBS = 20
SYNC_WAITERS = 5
LATENCY_MS = 4000  # every call still in flight at the provider when Redis dies
# Routes that need Redis, and what they are called with while it is down.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ("POST", "/v1/jobs", {"request": {"messages": [{"role": "user", "content": "x"}]}}),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/job_{id}", None),
    ("GET", "/v1/jobs/job_{id}?wait=1", None),
    ("GET", "/v1/jobs/job_{id}/stream", None),
    ("DELETE", "/v1/jobs/job_{id}", None),
    ("GET", "/health/ready", None),
]


@pytest.fixture
def outage_stack(tmp_path: Path, mock_port: int) -> Iterator[tuple[Stack, EmbeddedRedis]]:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    s = Stack(tmp_path / "stack", server.url, mock_port)
    try:
        s.start_worker("worker", concurrency=50)
        s.start_api()
        yield s, server
    finally:
        s.stop()
        server.stop()


def test_redis_killed_and_restarted_loses_nothing_and_never_answers_500(
    outage_stack: tuple[Stack, EmbeddedRedis], unique: str
) -> None:
    s, server = outage_stack
    procs = {p.name: p.pid for p in s.procs}
    keys = [f"{unique}-a{i}" for i in range(ASYNC_JOBS)]
    ids = [s.submit(k, LATENCY_MS) for k in keys]
    sync_keys = [f"{unique}-s{i}" for i in range(SYNC_WAITERS)]
    answers: dict[str, httpx.Response] = {}

    def wait_sync(key: str) -> None:
        answers[key] = web.post(
            f"{s.api_url}/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": key}],
                "mock": {"latency_ms": LATENCY_MS, "key": key},
            },
            timeout=180,
        )

    threads = [threading.Thread(target=wait_sync, args=(k,)) for k in sync_keys]
    for t in threads:
        t.start()
    wait_for(
        lambda: all(s.mock_calls(k) >= 1 for k in keys + sync_keys),
        30,
        "every call in flight at the provider",
    )

    server.stop(kill=True)  # SIGKILL: no shutdown, nothing flushed but the AOF
    killed_at = time.time()
    seen: dict[str, int] = {}
    # Down for longer than a job lease (2 s here), checking every route the whole time.
    while time.time() - killed_at < 4:
        for method, path, body in ROUTES:
            resp = web.request(
                method, f"{s.api_url}{path.format(id='0' * 32)}", json=body, timeout=30
            )
            seen[f"{method} {path}"] = resp.status_code
            assert resp.status_code == 503, (method, path, resp.status_code, resp.text)
            if path != "/health/ready":
                error = resp.json()["error"]
                assert error["type"] == "gateway_error"
                assert error["code"] == "gateway_unavailable"
                assert int(resp.headers["Retry-After"]) >= 1
    assert web.get(f"{s.api_url}/health/live").status_code == 200
    assert web.get(f"{s.api_url}/v1/models").status_code == 200

    server.start()  # the same port and AOF; the fixture stops it (no server left running)
    restarted_at = time.time()
    for job_id, key in zip(ids, keys, strict=True):
        job = s.wait_job(job_id, {"succeeded", "failed", "cancelled", "expired"}, timeout=90)
        assert job["status"] == "succeeded", job
        assert job["result"]["choices"][0]["message"]["content"] == f"mock answer to: {key}"
    for t in threads:
        t.join(120)
    for key in sync_keys:
        resp = answers[key]
        assert resp.status_code == 200, resp.text
        assert resp.json()["choices"][0]["message"]["content"] == f"mock answer to: {key}"
    recovered_s = time.time() - restarted_at
    # New work, through the same processes.
    fresh = web.post(
        f"{s.api_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": f"{unique}-after"}]},
        timeout=60,
    )
    assert fresh.status_code == 200, fresh.text
    assert {p.name: p.pid for p in s.procs if p.alive()} == procs
    calls = {k: s.mock_calls(k) for k in keys + sync_keys}
    print(
        f"outage: every route 503 while down ({len(seen)} checked); all "
        f"{ASYNC_JOBS + SYNC_WAITERS} accepted jobs succeeded {recovered_s:.1f}s after the "
        f"restart; provider calls per job: {sorted(set(calls.values()))}"
    )

"""Retries, circuit breakers, health checks, routing and fallbacks, through real workers and
mock providers over HTTP (docs/architecture.md "Errors and what happens to them")."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_cli.embedded_redis import free_port
from tests.support import web
from tests.support.stack import CLI, KEYS, Stack, StackFactory, port_open, wait_for


class MockProcess:
    """A mock provider of its own, which a test can stop and restart on the same port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MockProcess:
        log = open(self.log_dir / f"mock-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*CLI, "mock-provider", "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(lambda: port_open(self.port), 20, "mock provider")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        wait_for(lambda: not port_open(self.port), 10, "mock provider to stop")

    def calls(self, key: str) -> int:
        return int(web.get(f"{self.url}/_mock/stats").json()["by_key"].get(key, 0))


@pytest.fixture(scope="module")
def primary_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProcess]:
    mock = MockProcess(tmp_path_factory.mktemp("primary")).start()
    yield mock
    mock.stop()


@pytest.fixture
def primary(primary_process: MockProcess) -> MockProcess:
    """The primary provider, running (a test may have stopped it)."""
    if not port_open(primary_process.port):
        primary_process.start()
    return primary_process


def resilient_stack(
    make_stack: StackFactory,
    mock_port: int,
    primary: MockProcess,
    name: str,
    **overrides: Any,
) -> Stack:
    shared_mock = f"http://127.0.0.1:{mock_port}"
    cfg: dict[str, Any] = {
        "providers": {
            "primary": {"type": "mock", "base_url": f"{primary.url}/v1", "timeout_s": 5},
            "backup": {"type": "mock", "base_url": f"{shared_mock}/v1", "timeout_s": 5},
            "backup2": {"type": "mock", "base_url": f"{shared_mock}/v1", "timeout_s": 5},
            "z-ai": {"type": "zai", "base_url": f"{shared_mock}/api/paas/v4", "timeout_s": 5},
        },
        "models": {
            "single": [{"provider": "backup", "model": "m"}],
            "glm-4.6": [{"provider": "z-ai", "model": "glm-4.6"}],
            "failover": [
                {"provider": "primary", "model": "p-model"},
                {"provider": "backup", "model": "b-model"},
            ],
            "primary-only": [{"provider": "primary", "model": "p-model"}],
            # Both on the shared mock, so a directive's call count spans the two.
            "pair": [
                {"provider": "backup", "model": "a-model"},
                {"provider": "backup2", "model": "b-model"},
            ],
            "pair-no-alt": [
                {"provider": "backup", "model": "a-model"},
                {"provider": "backup2", "model": "b-model"},
            ],
            "ctx": [
                {"provider": "backup", "model": "small-context"},
                {"provider": "z-ai", "model": "glm-4.6"},
                {"provider": "backup2", "model": "big-context", "larger_context": True},
            ],
        },
        "default_model": "single",
        "retry": {
            "max_attempts": 3,
            "max_total_attempts": 6,
            "base_delay_s": 0.2,
            "max_delay_s": 5,
        },
        "breaker": {
            "consecutive_failures": 3,
            "failure_rate": 0.5,
            "min_calls": 20,
            "window_s": 30,
            "open_s": 2,
            "probe_timeout_s": 2,
        },
        "health": {"interval_s": 1, "timeout_s": 1},
        "fallbacks": {
            "order": ["alternative_provider", "cached_response"],
            "by_model": {"pair-no-alt": ["cached_response"]},
        },
    }
    cfg.update(overrides)
    return make_stack(name, **cfg)


@pytest.fixture(scope="module")
def rstack_module(
    make_stack: StackFactory, mock_port: int, primary_process: MockProcess
) -> Iterator[Stack]:
    s = resilient_stack(make_stack, mock_port, primary_process, "resilience")
    try:
        yield s.start_all()
    finally:
        s.stop()


@pytest.fixture
def rstack(rstack_module: Stack, primary: MockProcess) -> Stack:
    """The module's stack, as new: primary up, breakers closed, health unknown, nothing parked."""
    r = rstack_module.redis
    for pattern in (
        KEYS.breaker("*"),
        KEYS.health("*"),
        f"{KEYS.prefix}:cache*",
        KEYS.quota("*", "*"),
        KEYS.ratelimit("*", "*"),
    ):
        for key in r.scan_iter(match=pattern):
            r.delete(key)
    wait_for(
        lambda: r.zcard(KEYS.due) == 0 and r.zcard(KEYS.inflight) == 0,
        30,
        "the previous test's jobs to settle",
    )
    return rstack_module


NO_RETRY = {"max_attempts": 1, "max_total_attempts": 6, "base_delay_s": 0.1, "max_delay_s": 5}
NO_HEALTH_CHECKS = {"interval_s": 3600, "timeout_s": 1}


@pytest.fixture
def own_stack(
    make_stack: StackFactory, mock_port: int, primary: MockProcess
) -> Iterator[Callable[..., Stack]]:
    """A stack of a test's own (its config overridden), stopped after the test."""
    made: list[Stack] = []

    def make(name: str, **overrides: Any) -> Stack:
        stack = resilient_stack(make_stack, mock_port, primary, name, **overrides)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()


def chat(stack: Stack, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return web.post(f"{stack.api_url}/v1/chat/completions", json=body, timeout=timeout)


def job_of(stack: Stack, resp: httpx.Response) -> dict[str, Any]:
    job_id = resp.headers.get("X-Gateway-Job-Id") or resp.json()["job_id"]
    return dict(web.get(f"{stack.api_url}/v1/jobs/{job_id}").json())


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- retries ----------------------------------------------------------------------------------


def test_503_twice_then_success_is_three_upstream_calls(rstack: Stack, unique: str) -> None:
    resp = chat(
        rstack, {"messages": msg(unique), "mock": {"status": 503, "fail_times": 2, "key": unique}}
    )
    assert resp.status_code == 200, resp.text
    assert rstack.mock_calls(unique) == 3
    job = job_of(rstack, resp)
    assert [a["outcome"] for a in job["attempts"]] == ["error", "error", "success"]
    assert job["attempts"][0]["error"]["status"] == 503


def test_retry_after_is_honoured(rstack: Stack, unique: str) -> None:
    resp = chat(
        rstack,
        {
            "messages": msg(unique),
            "mock": {"status": 429, "retry_after": 2, "fail_times": 1, "key": unique},
        },
    )
    assert resp.status_code == 200, resp.text
    first, second = job_of(rstack, resp)["attempts"]
    assert first["error"]["status"] == 429 and second["outcome"] == "success"
    assert second["started_at"] - first["started_at"] >= 2.0


def test_retry_after_beyond_the_cap_falls_back_at_once(rstack: Stack, unique: str) -> None:
    resp = chat(
        rstack,
        {
            "model": "pair",
            "messages": msg(unique),
            "mock": {"status": 429, "retry_after": 60, "fail_times": 1, "key": unique},
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Gateway-Provider"] == "backup2"
    attempts = job_of(rstack, resp)["attempts"]
    assert [a["provider"] for a in attempts] == ["backup", "backup2"]
    assert attempts[1]["started_at"] - attempts[0]["started_at"] < 2


def test_a_job_waiting_out_its_backoff_holds_no_worker_slot(rstack: Stack, unique: str) -> None:
    job = web.post(
        f"{rstack.api_url}/v1/jobs",
        json={
            "request": {
                "messages": msg(unique),
                "mock": {"status": 429, "retry_after": 3, "fail_times": 1, "key": unique},
            }
        },
    ).json()
    wait_for(
        lambda: rstack.redis.zscore(KEYS.due, job["id"]) is not None,
        10,
        "the job to be parked in the due set",
    )
    parked = web.get(f"{rstack.api_url}/v1/jobs/{job['id']}").json()
    assert parked["status"] == "retrying"
    assert rstack.redis.exists(KEYS.lease(job["id"])) == 0  # no worker holds it
    done = web.get(f"{rstack.api_url}/v1/jobs/{job['id']}?wait=20", timeout=30).json()
    assert done["status"] == "succeeded"


@pytest.mark.parametrize(
    ("model", "directive", "status", "code"),
    [
        ("single", {"status": 400}, 400, "invalid_request"),
        ("glm-4.6", {"status": 429, "code": "1113"}, 429, "insufficient_quota"),
        ("glm-4.6", {"status": 400, "code": "1261"}, 400, "context_length_exceeded"),
    ],
)
def test_final_errors_are_not_retried(
    rstack: Stack, unique: str, model: str, directive: dict[str, Any], status: int, code: str
) -> None:
    resp = chat(
        rstack, {"model": model, "messages": msg(unique), "mock": {**directive, "key": unique}}
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert rstack.mock_calls(unique) == 1


def test_retries_stop_at_max_attempts(rstack: Stack, unique: str) -> None:
    resp = chat(rstack, {"messages": msg(unique), "mock": {"status": 502, "key": unique}})
    assert resp.status_code == 502
    assert resp.json()["error"]["type"] == "provider_error"
    assert rstack.mock_calls(unique) == 3  # retry.max_attempts


# -- failover, breaker, recovery ---------------------------------------------------------------


def primary_marked_down(stack: Stack) -> None:
    """Wait for the health check to mark the (stopped) primary unhealthy."""
    wait_for(
        lambda: not web.get(f"{stack.api_url}/v1/health").json()["providers"]["primary"]["healthy"],
        10,
        "the health check to mark the primary down",
    )


def breaker_state(stack: Stack, name: str) -> str:
    health = web.get(f"{stack.api_url}/v1/health").json()
    return str(health["providers"][name]["breaker"])


def test_primary_down_then_breaker_then_recovery(
    rstack: Stack, primary: MockProcess, unique: str
) -> None:
    # Healthy: the primary serves.
    ok = chat(rstack, {"model": "failover", "messages": msg(f"{unique}-0")})
    assert ok.headers["X-Gateway-Provider"] == "primary"

    primary.stop()
    started = time.time()
    resp = chat(rstack, {"model": "failover", "messages": msg(f"{unique}-1")})
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Gateway-Provider"] == "backup"
    assert time.time() - started < 10, "the backup answers within seconds"

    # The breaker (or the health check) now keeps jobs off the primary: one attempt each.
    wait_for(
        lambda: (
            breaker_state(rstack, "primary") == "open"
            or not web.get(f"{rstack.api_url}/v1/health").json()["providers"]["primary"]["healthy"]
        ),
        10,
        "primary to be taken out",
    )
    direct = chat(rstack, {"model": "failover", "messages": msg(f"{unique}-2")})
    assert direct.headers["X-Gateway-Provider"] == "backup"
    assert [a["provider"] for a in job_of(rstack, direct)["attempts"]] == ["backup"]
    ready = web.get(f"{rstack.api_url}/health/ready")
    assert ready.status_code == 200  # the backup still serves: not degraded for this

    primary.start()

    # Health check passes, the breaker's probe succeeds and closes it; traffic returns.
    def back_on_primary() -> bool:
        r = chat(rstack, {"model": "failover", "messages": msg(f"{unique}-{time.time()}")})
        return r.headers.get("X-Gateway-Provider") == "primary"

    wait_for(back_on_primary, 30, "traffic to return to the primary", interval=0.5)
    assert breaker_state(rstack, "primary") == "closed"
    health = web.get(f"{rstack.api_url}/v1/health").json()["providers"]["primary"]
    assert health["healthy"] is True
    # The outage is remembered for operators: the dashboard (open on loopback without keys)
    # and an admin key's /v1/health show the last error; a client's /v1/health does not.
    assert "last_error" not in health
    seen = web.get(f"{rstack.api_url}/dashboard/data").json()["providers"]["primary"]
    assert seen["last_error"]


def test_no_healthy_provider_is_503_and_ready_reports_it(
    rstack: Stack, primary: MockProcess, unique: str
) -> None:
    primary.stop()
    primary_marked_down(rstack)
    resp = chat(rstack, {"model": "primary-only", "messages": msg(unique)})
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "no_healthy_provider"
    assert job_of(rstack, resp)["attempts"] == []  # no call was made
    metrics = web.get(f"{rstack.api_url}/v1/health").json()
    assert metrics["providers"]["primary"]["healthy"] is False


def test_wait_for_recovery_keeps_the_job_until_the_provider_returns(
    rstack: Stack, primary: MockProcess, unique: str
) -> None:
    primary.stop()
    primary_marked_down(rstack)
    job = web.post(
        f"{rstack.api_url}/v1/jobs",
        json={
            "request": {
                "model": "primary-only",
                "messages": msg(unique),
                "gateway": {"wait_for_recovery": True},
            },
            "deadline_s": 60,
        },
    ).json()
    time.sleep(3)
    waiting = web.get(f"{rstack.api_url}/v1/jobs/{job['id']}").json()
    assert waiting["status"] in ("queued", "running"), waiting
    primary.start()
    done = web.get(f"{rstack.api_url}/v1/jobs/{job['id']}?wait=30", timeout=40).json()
    assert done["status"] == "succeeded", done
    assert done["provider"] == "primary"


def test_preferred_provider_is_honoured(rstack: Stack, unique: str) -> None:
    resp = chat(
        rstack,
        {"model": "failover", "messages": msg(unique), "gateway": {"preferred_provider": "backup"}},
    )
    assert resp.headers["X-Gateway-Provider"] == "backup"


# -- cached and degraded answers ----------------------------------------------------------------


def test_last_good_answer_is_served_stale_when_every_provider_fails(
    own_stack: Callable[..., Stack], unique: str
) -> None:
    s = own_stack("stale", retry=NO_RETRY)
    s.start_worker()
    s.start_api()
    body = {"messages": msg(unique), "mock": {"status": 500, "fail_after": 1, "key": unique}}
    first = chat(s, body)
    assert first.status_code == 200
    second = chat(s, body)  # the same request; the provider now fails
    assert second.status_code == 200, second.text
    assert second.headers["X-Gateway-Cache"] == "stale"
    assert second.json() == first.json()
    assert job_of(s, second)["cache"] == "stale"
    other_key = chat(s, {**body, "messages": msg(f"{unique}-other")})
    assert other_key.status_code == 502  # nothing cached for a different request


def test_degraded_answer_is_flagged(own_stack: Callable[..., Stack], unique: str) -> None:
    s = own_stack(
        "degraded",
        fallbacks={
            "order": ["alternative_provider", "degraded"],
            "degraded_answer": "The assistant is busy; try again soon.",
        },
        retry=NO_RETRY,
    )
    s.start_worker()
    s.start_api()
    resp = chat(s, {"messages": msg(unique), "mock": {"status": 500}})
    assert resp.status_code == 200
    assert resp.headers["X-Gateway-Degraded"] == "true"
    assert resp.json()["choices"][0]["message"]["content"].startswith("The assistant is busy")
    assert job_of(s, resp)["degraded"] is True


# -- one probe across the fleet --------------------------------------------------------------


def test_half_open_admits_one_probe_across_several_workers(
    own_stack: Callable[..., Stack], primary: MockProcess, unique: str
) -> None:
    s = own_stack("probes", retry=NO_RETRY, health=NO_HEALTH_CHECKS)
    for i in range(3):
        s.start_worker(f"worker-{i}", concurrency=50)
    s.start_api()
    failing = {
        "model": "primary-only",
        "messages": msg(unique),
        "mock": {"status": 500, "key": unique},
    }
    for _ in range(3):  # consecutive_failures: 3
        chat(s, failing)
    assert breaker_state(s, "primary") == "open"
    opens_before = int(s.redis.hget(KEYS.breaker("primary"), "opens") or 0)
    calls_before = primary.calls(unique)

    # Hammer it from many clients through three workers for several open periods.
    deadline = time.time() + 7
    with httpx.Client(timeout=30) as client:
        while time.time() < deadline:
            for _ in range(10):
                client.post(f"{s.api_url}/v1/jobs", json={"request": failing})
            time.sleep(0.1)
    time.sleep(1)
    probes = primary.calls(unique) - calls_before
    reopens = int(s.redis.hget(KEYS.breaker("primary"), "opens") or 0) - opens_before
    assert probes >= 2, "half-open periods did admit probes"
    assert probes == reopens, "exactly one probe per open period, fleet-wide"
    assert probes <= 7 / 2 + 1


def test_a_dead_probe_holder_does_not_wedge_the_breaker(
    own_stack: Callable[..., Stack], primary: MockProcess, unique: str
) -> None:
    s = own_stack("deadprobe", retry=NO_RETRY, health=NO_HEALTH_CHECKS)
    holder = s.start_worker("holder", concurrency=20)
    s.start_api()
    for _ in range(3):
        chat(s, {"model": "primary-only", "messages": msg(unique), "mock": {"status": 500}})
    assert breaker_state(s, "primary") == "open"
    time.sleep(2.2)  # open_s: the next call is the probe
    web.post(
        f"{s.api_url}/v1/jobs",
        json={
            "request": {
                "model": "primary-only",
                "messages": msg(unique),
                "mock": {"hang_s": 30, "key": f"{unique}-hang"},
            }
        },
    )
    wait_for(lambda: primary.calls(f"{unique}-hang") == 1, 10, "the probe call to start")
    assert s.redis.exists(KEYS.breaker_probe("primary")) == 1
    holder.kill()  # the probe holder dies mid-call

    s.start_worker("rescuer")

    # The probe lease (probe_timeout_s: 2) expires; a new probe succeeds and closes it.
    def closed() -> bool:
        r = chat(
            s, {"model": "primary-only", "messages": msg(f"{unique}-{time.time()}")}, timeout=30
        )
        return r.status_code == 200

    wait_for(closed, 30, "the breaker to recover", interval=0.5)
    assert breaker_state(s, "primary") == "closed"


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_worker_metrics_count_retries_fallbacks_and_breaker_transitions(
    own_stack: Callable[..., Stack], primary: MockProcess, unique: str
) -> None:
    s = own_stack("metrics", health=NO_HEALTH_CHECKS)
    port = free_port()
    s.start_worker(metrics_port=port)
    s.start_api()
    before = web.get(f"{s.api_url}/v1/health").json()["metrics"]
    chat(s, {"messages": msg(unique), "mock": {"status": 503, "fail_times": 1, "key": unique}})
    chat(
        s,
        {
            "model": "pair",
            "messages": msg(unique),
            "mock": {"status": 404, "fail_times": 1, "key": f"{unique}-fb"},
        },
    )
    for _ in range(3):
        chat(
            s,
            {
                "model": "primary-only",
                "messages": msg(unique),
                "mock": {"status": 400, "code": "invalid", "key": f"{unique}-x"},
            },
        )
    primary.stop()
    chat(s, {"model": "failover", "messages": msg(f"{unique}-down")})
    text = web.get(f"http://127.0.0.1:{port}/metrics").text
    assert (
        _counter(text, "gateway_retries_total", provider="backup", error_class="server_error") >= 1
    )
    assert _counter(text, "gateway_fallbacks_total", kind="alternative_provider") >= 2
    assert _counter(text, "gateway_breaker_transitions_total", breaker="primary", to="open") == 1
    assert (
        _counter(
            text, "gateway_provider_calls_total", provider="primary", outcome="invalid_request"
        )
        == 3
    )
    assert _counter(text, "gateway_provider_call_duration_seconds_count", provider="backup") >= 2

    # The API's scrape reads each breaker's state from Redis: the same from every API process.
    api = web.get(f"{s.api_url}/metrics").text
    assert _counter(api, "gateway_breaker_state", provider="primary", state="open") == 1
    assert _counter(api, "gateway_breaker_state", provider="primary", state="closed") == 0
    assert _counter(api, "gateway_breaker_state", provider="backup", state="closed") == 1

    # /v1/health sums the whole fleet's events (counted in Redis, not per process).
    after = web.get(f"{s.api_url}/v1/health").json()["metrics"]
    jobs = {k: after["jobs"][k] - before["jobs"][k] for k in after["jobs"]}
    assert jobs == {"submitted": 6, "succeeded": 3, "failed": 3, "cancelled": 0, "expired": 0}
    assert after["retries"] - before["retries"] >= 1
    fallbacks = after["fallbacks"].get("alternative_provider", 0)
    assert fallbacks - before["fallbacks"].get("alternative_provider", 0) >= 2
    assert 0 < after["success_rate"] < 1


def test_context_window_errors_fall_back_only_to_a_larger_context_model(
    rstack: Stack, unique: str
) -> None:
    resp = chat(
        rstack,
        {
            "model": "ctx",
            "messages": msg(unique),
            "mock": {"status": 400, "code": "1261", "fail_times": 1, "key": unique},
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == "big-context"
    attempts = job_of(rstack, resp)["attempts"]
    # z-ai (not marked larger-context) is skipped, not tried.
    assert [a["model"] for a in attempts] == ["small-context", "big-context"]
    assert attempts[0]["error"]["class"] == "context_length"


def test_context_window_error_without_a_larger_model_is_400(rstack: Stack, unique: str) -> None:
    resp = chat(
        rstack,
        {
            "model": "pair",
            "messages": msg(unique),
            "mock": {"status": 400, "code": "1261", "key": unique},
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "context_length_exceeded"
    assert rstack.mock_calls(unique) == 1


def test_a_models_own_fallback_order_replaces_the_global_one(rstack: Stack, unique: str) -> None:
    # "pair-no-alt" has fallbacks.by_model: [cached_response]: no alternative provider.
    resp = chat(
        rstack,
        {
            "model": "pair-no-alt",
            "messages": msg(unique),
            "mock": {"status": 404, "fail_times": 1, "key": unique},
        },
    )
    assert resp.status_code == 404, resp.text
    assert [a["provider"] for a in job_of(rstack, resp)["attempts"]] == ["backup"]
    same_deployments = chat(
        rstack,
        {
            "model": "pair",
            "messages": msg(f"{unique}-g"),
            "mock": {"status": 404, "fail_times": 1, "key": f"{unique}-g"},
        },
    )
    assert same_deployments.headers["X-Gateway-Provider"] == "backup2"

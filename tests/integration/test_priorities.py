"""Priorities with real workers: a batch backlog does not delay interactive jobs (the
reserved interactive lane), batch still progresses, and the lane lives and dies with its
worker."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway_cli.embedded_redis import free_port
from gateway_cli.lanes import split
from tests.support import web
from tests.support.stack import KEYS, LANE, Stack, StackFactory, wait_for


@pytest.fixture
def pstack(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack("prio", worker=LANE)
    try:
        s.start_api(workers=2)
        yield s
    finally:
        s.stop()


def test_split_reserves_a_share_for_interactive() -> None:
    assert split(500, 0.1) == (450, 50)
    assert split(20, 0.1) == (18, 2)
    assert split(5, 0.1) == (4, 1)
    assert split(1, 0.1) == (1, 0)
    assert split(100, 0) == (100, 0)


def interactive(stack: Stack, tag: str) -> float:
    started = time.perf_counter()
    resp = web.post(
        f"{stack.api_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": tag}], "mock": {"latency_ms": 200}},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return time.perf_counter() - started


def worker_pids(stack: Stack) -> set[int]:
    return {int(name.rsplit(":", 1)[1]) for name in stack.redis.zrange(KEYS.workers, 0, -1)}


def test_batch_backlog_does_not_delay_interactive_jobs(pstack: Stack, unique: str) -> None:
    stack = pstack
    worker = stack.start_worker(concurrency=20)  # 18 slots for every queue, 2 interactive only
    wait_for(lambda: len(worker_pids(stack)) == 2, 30, "the worker and its interactive lane")
    idle = sorted(interactive(stack, f"idle {i}") for i in range(5))[2]

    def batch(i: int) -> str:
        body = {
            "request": {
                "messages": [{"role": "user", "content": f"{unique} batch {i}"}],
                "mock": {"latency_ms": 1000},
            },
            "priority": "batch",
        }
        resp = web.post(f"{stack.api_url}/v1/jobs", json=body, timeout=30)
        assert resp.status_code == 202
        return str(resp.json()["id"])

    ids: list[str] = []

    def queued() -> int:
        return sum(1 for i in ids if stack.redis.hget(KEYS.job(i), "status") == "queued")

    def top_up(target: int) -> int:
        """Submit batch jobs until ``target`` of them wait: sized by what this machine drains,
        not by a guess of how fast it submits (bounded)."""
        with ThreadPoolExecutor(16) as pool:
            while (waiting := queued()) < target and len(ids) < 2000:
                ids.extend(pool.map(batch, range(len(ids), len(ids) + 32)))
        return waiting

    top_up(60)
    busy, backlogs = [], []
    for i in range(5):
        backlogs.append(top_up(30))  # a real backlog as each interactive request starts
        busy.append(interactive(stack, f"busy {i}"))
    busy.sort()
    assert min(backlogs) >= 30, "the backlog must be there while interactive jobs run"
    assert busy[2] < 2 * idle, (idle, busy)
    wait_for(
        lambda: any(stack.redis.hget(KEYS.job(i), "status") == "succeeded" for i in ids),
        30,
        "batch jobs to progress under interactive load",
    )
    assert worker.alive()


def test_the_lane_stops_with_its_worker_and_is_restarted_if_it_dies(pstack: Stack) -> None:
    stack = pstack
    worker = stack.start_worker(concurrency=10)
    pids = wait_for(
        lambda: worker_pids(stack) if len(worker_pids(stack)) == 2 else None, 30, "lane"
    )
    lane_pid = (pids - {worker.pid}).pop()
    os.kill(lane_pid, 9)  # the lane dies on its own: the worker starts a new one
    wait_for(
        lambda: len(worker_pids(stack) - {lane_pid}) == 2 and lane_pid not in _live(stack),
        40,
        "a new interactive lane",
    )
    new_lane = (worker_pids(stack) - {worker.pid, lane_pid}).pop()
    assert interactive(stack, "after restart") < 5
    took = worker.stop(timeout=15)
    assert took < 10, worker.tail(60)
    wait_for(lambda: not _alive(new_lane), 10, "the lane to exit with its worker")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _live(stack: Stack) -> set[int]:
    return {p for p in worker_pids(stack) if _alive(p)}


def test_the_metrics_port_counts_the_lane_too(pstack: Stack) -> None:
    stack = pstack
    port = free_port()
    stack.start_worker(concurrency=20, metrics_port=port)

    def one(i: int) -> int:
        body = {"messages": [{"role": "user", "content": f"m{i}"}], "mock": {"latency_ms": 300}}
        return web.post(f"{stack.api_url}/v1/chat/completions", json=body, timeout=30).status_code

    with ThreadPoolExecutor(40) as pool:
        assert set(pool.map(one, range(40))) == {200}
    text = web.get(f"http://127.0.0.1:{port}/metrics").text

    def values(prefix: str) -> list[float]:
        return [float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix)]

    assert values('gateway_jobs_finished_total{status="succeeded"}') == [40.0]  # both, summed
    assert values('gateway_queue_wait_seconds_count{priority="interactive"}') == [40.0]
    assert values(
        'gateway_job_duration_seconds_count{priority="interactive",status="succeeded"}'
    ) == [40.0]
    # Every answer is stored (for the cached-response fallback).
    assert values("gateway_cache_stores_total ") == [40.0]
    prompt = values(
        'gateway_tokens_total{door="chat",key_id="anonymous",kind="prompt",model="mock-model"'
    )
    assert prompt and prompt[0] > 0
    api = web.get(f"{stack.api_url}/metrics").text
    assert 'gateway_queue_depth{priority="batch"}' in api

"""The gateway beside its peers, in one run, against one upstream, with one load generator.

Targets, one at a time (so none competes with another for the 2 cores):
- the upstream called directly (the baseline every "added" figure subtracts);
- Portkey gateway 1.15.2 (Node, one process, ``--headless``), routed with
  ``x-portkey-provider: openai`` and ``x-portkey-custom-host``;
- a LiteLLM proxy 1.108.7 (one process, in its own venv under ``var/peers``);
- llm-gateway: the default ``llm-gateway api`` (2 gunicorn workers) and one
  ``llm-gateway worker`` with its interactive lane, CPU counted for all of them and Redis.

Figures: added p50 of 200 sequential distinct prompts; completions/s over 10 s at 64
connections and CPU ms per request; then, on a 200 ms upstream, Portkey's req/s at c=200
against 2,000 gateway jobs through one worker process (concurrency 1,000), submitted with
``POST /v1/jobs`` and waited for with ``GET /v1/jobs/{id}?wait=``; the most calls the upstream
saw at once; the worker's RSS with 1,000 calls in flight. Ratios to Portkey, so a slow day
changes the figures but not the verdict.

Run: ``make bench-peers`` (installs the peers under ``var/peers`` on first use), or
``python bench/bench_peers.py [--quick] [--only portkey,gateway]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import (  # noqa: E402
    RawClient,
    chat_body,
    cpu_seconds,
    fleet_ready,
    load,
    pct,
    rss_mb,
    sequential,
)
from gateway_cli.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from tests.support.stack import Stack, port_open, wait_for  # noqa: E402

PEERS = ROOT / "var" / "peers"
PORTKEY_VERSION = "1.15.2"
LITELLM_VERSION = "1.108.7"
PORTKEY_JS = PEERS / "portkey/node_modules/@portkey-ai/gateway/build/start-server.js"
LITELLM_BIN = PEERS / "litellm-venv/bin/litellm"


# -- installing the peers on first use ----------------------------------------------------
def ensure_portkey() -> bool:
    if PORTKEY_JS.exists():
        return True
    if not shutil.which("npm"):
        print("  (no npm: Portkey skipped)")
        return False
    (PEERS / "portkey").mkdir(parents=True, exist_ok=True)
    print(f"  installing @portkey-ai/gateway@{PORTKEY_VERSION} with npm ...", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", f"@portkey-ai/gateway@{PORTKEY_VERSION}"],
        cwd=PEERS / "portkey",
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return PORTKEY_JS.exists()


def ensure_litellm() -> bool:
    if LITELLM_BIN.exists():
        return True
    venv = PEERS / "litellm-venv"
    print(f"  installing litellm[proxy]=={LITELLM_VERSION} in {venv} ...", flush=True)
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        check=True,
    )
    return LITELLM_BIN.exists()


# -- processes -------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, argv: list[str], port: int, logs: Path, **env: str) -> None:
        self.name, self.port = name, port
        self.log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        wait_for(lambda: port_open(port) or self.popen.poll() is not None, 120, name)
        if self.popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {(logs / f'{name}.log').read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait()
        self.log.close()


def upstream(logs: Path, latency_ms: int) -> Server:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench/upstream.py"), "--port", str(port)]
    return Server(f"upstream-{latency_ms}ms", [*argv, "--latency-ms", str(latency_ms)], port, logs)


def upstream_stats(up: Server) -> dict[str, int]:
    return httpx.get(f"http://127.0.0.1:{up.port}/stats").json()  # type: ignore[no-any-return]


def reset_stats(up: Server) -> None:
    httpx.post(f"http://127.0.0.1:{up.port}/stats/reset")


# -- figures -------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    added_p50: float = float("nan")
    rps: float = float("nan")
    cpu_ms: float = float("nan")
    slow_rps: float = float("nan")
    notes: list[str] = field(default_factory=list)


def throughput(
    url: str, seconds: float, conc: int, headers: dict[str, str], pids: Callable[[], list[int]]
) -> tuple[float, float, list[float]]:
    """(completions/s, CPU ms per request of ``pids``, latencies) over ``seconds`` at ``conc``."""
    cpu0 = cpu_seconds(*pids())
    dt, lat, _ = asyncio.run(
        load(url, 10**9, conc, lambda i: chat_body(f"c{i}"), 200, headers, seconds)
    )
    cpu = cpu_seconds(*pids()) - cpu0
    return len(lat) / dt, cpu * 1000 / max(1, len(lat)), lat


def measure_proxy(
    row: Row,
    url: str,
    headers: dict[str, str],
    slow_headers: dict[str, str] | None,
    pids: Callable[[], list[int]],
    direct_p50: float,
    args: argparse.Namespace,
    own_sequential: bool = False,
) -> None:
    sequential(url, 50, headers)  # warm up
    if own_sequential:  # else measured in interleaved_sequential()
        row.added_p50 = pct(sequential(url, args.seq, headers), 0.5) - direct_p50
    row.rps, row.cpu_ms, lat = throughput(url, args.seconds, 64, headers, pids)
    row.notes.append(f"c=64 p50/p99 {pct(lat, 0.5):.0f}/{pct(lat, 0.99):.0f} ms")
    if slow_headers is not None:
        row.slow_rps, _, lat = throughput(url, args.seconds, 200, slow_headers, pids)
        row.notes.append(f"200 ms upstream c=200 p99 {pct(lat, 0.99):.0f} ms")


def run_portkey(row: Row, logs: Path, fast: Server, slow: Server, direct: float, args: Any) -> None:
    port = free_port()
    srv = Server("portkey", ["node", str(PORTKEY_JS), f"--port={port}", "--headless"], port, logs)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        measure_proxy(
            row, url, portkey_route(fast), portkey_route(slow), lambda: [srv.pid], direct, args
        )
        row.notes.append(f"RSS {rss_mb(srv.pid):.0f} MB")
    finally:
        srv.stop()


def run_litellm(row: Row, logs: Path, fast: Server, slow: Server, direct: float, args: Any) -> None:
    port = free_port()
    cfg = logs / "litellm.yaml"
    master = f"sk-{secrets.token_hex(32)}"
    model = {"api_key": "sk-bench", "model": "openai/mock-model"}
    cfg.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": "mock-model",
                        "litellm_params": {**model, "api_base": f"http://127.0.0.1:{fast.port}/v1"},
                    }
                ],
                "litellm_settings": {"telemetry": False, "drop_params": True},
                "general_settings": {"master_key": master},
            }
        )
    )
    argv = [str(LITELLM_BIN), "--config", str(cfg), "--port", str(port), "--num_workers", "1"]
    srv = Server("litellm", argv, port, logs, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False")
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"Authorization": f"Bearer {master}"}
        measure_proxy(row, url, headers, None, lambda: [srv.pid], direct, args, True)
        row.notes.append(f"RSS {rss_mb(srv.pid):.0f} MB")
    finally:
        srv.stop()


def gateway_stack(base: Path, redis_url: str, up: Server, **worker: Any) -> Stack:
    return Stack(
        base,
        redis_url,
        up.port,
        worker={
            "lease_s": 15,
            "reaper_interval_s": 5,
            "heartbeat_s": 5,
            "shutdown_grace_s": 3,
            **worker,
        },
        # Health checks against the bench upstream are harmless but not the point.
        health={"interval_s": 30, "timeout_s": 2},
    )


@contextmanager
def gateway_tree(tree: Path | None) -> Iterator[None]:
    """Run the gateway's processes from another checkout (``--baseline``): its packages
    first on the path, its directory as the working one."""
    if tree is None:
        yield
        return
    saved, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    os.environ["PYTHONPATH"] = str(tree)
    os.chdir(tree)
    try:
        yield
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def run_gateway(
    row: Row,
    logs: Path,
    redis: EmbeddedRedis,
    fast: Server,
    direct: float,
    args: Any,
    own_sequential: bool = False,
) -> None:
    # The defaults: `llm-gateway api` (2 gunicorn workers) + one `llm-gateway worker` (500
    # slots, 10% of them in the interactive lane, a child process).
    stack = gateway_stack(logs / "gw-fast", f"{redis.url[:-2]}/1", fast, interactive_share=0.1)
    try:
        worker = stack.start_worker(concurrency=500)
        api = stack.start_api(workers=2)
        wait_for(
            lambda: fleet_ready(stack.api_url),
            30,
            "gateway ready",
        )
        assert redis.proc is not None
        redis_pid = redis.proc.pid
        url = f"{stack.api_url}/v1/chat/completions"
        pids = lambda: [api.pid, worker.pid, redis_pid]  # noqa: E731
        measure_proxy(row, url, {}, None, pids, direct, args, own_sequential)
    finally:
        stack.stop()


async def jobs_and_wait(api_url: str, n: int) -> tuple[float, list[float]]:
    """Submit ``n`` jobs (32 connections), and wait for each with ``?wait=`` (200
    connections) as soon as it is accepted. Returns (seconds for all, per-job latency ms)."""
    ids: asyncio.Queue[tuple[str, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    counter = iter(range(n))
    submit_url = f"{api_url}/v1/jobs"

    async def submitter() -> None:
        client = RawClient(submit_url)
        try:
            for i in counter:
                t0 = time.perf_counter()
                req = {"request": chat_body(f"job{i}"), "priority": "normal"}
                status, raw = await client.post(req)
                assert status == 202, raw[:300]
                await ids.put((json.loads(raw)["id"], t0))
        finally:
            client.close()

    async def waiter() -> None:
        client = RawClient(submit_url)
        try:
            while (item := await ids.get()) is not None:
                job_id, t0 = item
                while True:
                    status, raw = await client.request("GET", f"/v1/jobs/{job_id}?wait=60")
                    assert status == 200, raw[:300]
                    state = json.loads(raw)["status"]
                    if state in ("succeeded", "failed", "expired", "cancelled"):
                        assert state == "succeeded", raw[:300]
                        break
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            client.close()

    started = time.perf_counter()
    waiters = [asyncio.create_task(waiter()) for _ in range(200)]
    await asyncio.gather(*(submitter() for _ in range(32)))
    for _ in waiters:
        await ids.put(None)
    await asyncio.gather(*waiters)
    return time.perf_counter() - started, latencies


def run_gateway_jobs(
    row: Row, logs: Path, redis: EmbeddedRedis, slow: Server, args: Any
) -> tuple[float, float, float]:
    """2,000 jobs of 200 ms through one worker process at concurrency 1,000.
    Returns (jobs/s, max calls in flight at the upstream, worker CPU ms per job)."""
    stack = gateway_stack(
        logs / "gw-jobs", f"{redis.url[:-2]}/2", slow, interactive_share=0.0, concurrency=1000
    )
    try:
        worker = stack.start_worker(concurrency=1000)
        stack.start_api(workers=2)
        wait_for(
            lambda: fleet_ready(stack.api_url),
            30,
            "gateway ready",
        )
        asyncio.run(jobs_and_wait(stack.api_url, 100))  # warm up
        reset_stats(slow)
        cpu0 = cpu_seconds(worker.pid)
        dt, lat = asyncio.run(jobs_and_wait(stack.api_url, args.jobs))
        cpu = cpu_seconds(worker.pid) - cpu0
        peak = upstream_stats(slow)["max_in_flight"]
        row.notes.append(
            f"{args.jobs} jobs: p50 {pct(lat, 0.5):.0f} ms, max {peak} calls in flight"
        )
        return args.jobs / dt, peak, cpu * 1000 / args.jobs
    finally:
        stack.stop()


def worker_rss_at(logs: Path, redis: EmbeddedRedis, n: int) -> tuple[float, int]:
    """The worker's RSS with up to ``n`` calls in flight (a 60 s upstream holds them open):
    (peak RSS MB, the most calls in flight seen), sampled until ``n`` are or 45 s pass."""
    up = upstream(logs, 60_000)
    stack = gateway_stack(
        logs / "gw-rss", f"{redis.url[:-2]}/3", up, interactive_share=0.0, concurrency=n
    )
    try:
        worker = stack.start_worker(concurrency=n)
        stack.start_api(workers=2)

        async def submit_all() -> None:
            await load(
                f"{stack.api_url}/v1/jobs",
                n,
                32,
                lambda i: {"request": chat_body(f"rss{i}"), "priority": "normal"},
                202,
            )

        asyncio.run(submit_all())
        peak_rss, peak_calls, until = 0.0, 0, time.monotonic() + 45
        while peak_calls < n and time.monotonic() < until:
            peak_calls = max(peak_calls, upstream_stats(up)["in_flight"])
            peak_rss = max(peak_rss, rss_mb(worker.pid))
            time.sleep(0.5)
        return max(peak_rss, rss_mb(worker.pid)), peak_calls
    finally:
        stack.stop()
        up.stop()


def portkey_route(up: Server) -> dict[str, str]:
    return {
        "Authorization": "Bearer sk-bench",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"http://127.0.0.1:{up.port}/v1",
    }


def interleaved_sequential(
    logs: Path, redis: EmbeddedRedis, fast: Server, only: set[str], args: Any
) -> dict[str, float]:
    """Sequential latency p50 of every target, all running at once (idle but the one being
    measured) and measured in alternating rounds, so each sees the same machine state: a
    sequential figure moves with this machine's moment more than any other. Returns p50 ms
    per target, "direct" (the upstream alone) included."""
    direct_url = f"http://127.0.0.1:{fast.port}/v1/chat/completions"
    targets: list[tuple[str, str, dict[str, str]]] = [("direct", direct_url, {})]
    started: list[Any] = []
    try:
        if "portkey" in only and PORTKEY_JS.exists():
            port = free_port()
            argv = ["node", str(PORTKEY_JS), f"--port={port}", "--headless"]
            started.append(Server("portkey-seq", argv, port, logs))
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            targets.append(("portkey", url, portkey_route(fast)))
        if "gateway" in only:
            stack = gateway_stack(
                logs / "gw-seq", f"{redis.url[:-2]}/4", fast, interactive_share=0.1
            )
            started.append(stack)
            stack.start_worker(concurrency=500)
            stack.start_api(workers=2)
            wait_for(
                lambda: fleet_ready(stack.api_url),
                30,
                "gateway ready",
            )
            targets.append(("gateway", f"{stack.api_url}/v1/chat/completions", {}))
        samples: dict[str, list[float]] = {name: [] for name, _, _ in targets}
        for _, url, headers in targets:
            sequential(url, 50, headers)  # warm up
        rounds = 5
        for _ in range(rounds):
            for name, url, headers in targets:
                samples[name] += sequential(url, args.seq // rounds, headers)
        return {name: pct(v, 0.5) for name, v in samples.items()}
    finally:
        for proc in reversed(started):
            proc.stop()


def print_row(row: Row) -> None:
    print(
        f"  {row.name}: added p50 {row.added_p50:.2f} ms, {row.rps:.0f}/s at c=64, "
        f"{row.cpu_ms:.2f} CPU ms/req, 200 ms upstream {row.slow_rps:.0f}/s; "
        + "; ".join(row.notes),
        flush=True,
    )


def ratio(x: float, y: float) -> str:
    return f"{x / y:.2f}x" if y == y and y else "n/a"  # noqa: PLR0124 (nan check)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s loads, 1,000 jobs")
    parser.add_argument("--only", default="portkey,litellm,gateway")
    parser.add_argument(
        "--baseline", help="another checkout (e.g. a git worktree) measured the same way, first"
    )
    args = parser.parse_args()
    args.seq = 200
    args.seconds = 5.0 if args.quick else 10.0
    args.jobs = 1000 if args.quick else 2000
    only = set(args.only.split(","))
    print("# llm-gateway beside its peers (same upstream, same load generator, one run)")
    have_portkey = "portkey" in only and ensure_portkey()
    have_litellm = "litellm" in only and ensure_litellm()

    logs = Path(tempfile.mkdtemp(prefix="llm-gateway-peers-"))
    redis = EmbeddedRedis(logs / "redis", appendonly=False).start()
    fast, slow = upstream(logs, 0), upstream(logs, 200)
    rows: dict[str, Row] = {}
    try:
        seq = interleaved_sequential(logs, redis, fast, only, args)
        direct = seq["direct"]
        print(
            "  sequential p50, interleaved rounds: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in seq.items())
        )
        peers = [
            (
                have_portkey,
                "portkey",
                f"Portkey gateway {PORTKEY_VERSION} (Node, one process)",
                run_portkey,
            ),
            (
                have_litellm,
                "litellm",
                f"LiteLLM proxy {LITELLM_VERSION} (one process)",
                run_litellm,
            ),
        ]
        for wanted, key, title, run in peers:
            if not wanted:
                continue
            try:
                row = Row(title)
                run(row, logs, fast, slow, direct, args)
                if key in seq:
                    row.added_p50 = seq[key] - direct
                rows[key] = row
                print_row(row)
            except Exception as exc:  # a peer that will not run must not hide the others
                print(f"  {title}: not measured ({str(exc)[-300:]})")
        rss = (float("nan"), 0)
        gateways = [("gateway", None)]
        if args.baseline:
            gateways.insert(0, ("baseline", Path(args.baseline).resolve()))
        for key, tree in gateways if "gateway" in only else []:
            name = "llm-gateway (api: 2 gunicorn workers + 1 worker w/ lane)"
            if tree is not None:
                name = f"llm-gateway at {args.baseline} (the same)"
            gw = rows[key] = Row(name)
            base = logs / key
            base.mkdir()
            with gateway_tree(tree):
                # A baseline checkout is not in the interleaved rounds: its own sequential run.
                run_gateway(gw, base, redis, fast, direct, args, own_sequential=tree is not None)
                if tree is None and "gateway" in seq:
                    gw.added_p50 = seq["gateway"] - direct
                gw.slow_rps, _, worker_cpu = run_gateway_jobs(gw, base, redis, slow, args)
                gw.notes.append(f"worker {worker_cpu:.2f} CPU ms/job")
                got = worker_rss_at(base, redis, 1000)
                gw.notes.append(f"worker RSS {got[0]:.0f} MB with {got[1]} calls in flight")
                if tree is None:
                    rss = got
            print_row(gw)
    finally:
        fast.stop()
        slow.stop()
        redis.stop()

    pk = rows.get("portkey")
    print(
        "\n| target | added p50, sequential | completions/s at c=64 | CPU ms per request "
        "| 200 ms upstream: req/s c=200 (gateway: jobs/s) |"
    )
    print("|---|---|---|---|---|")
    for row in rows.values():
        print(
            f"| {row.name} | {row.added_p50:.2f} ms | {row.rps:.0f} | {row.cpu_ms:.2f} "
            f"| {row.slow_rps:.0f} |"
        )
    gw_row = rows.get("gateway")
    if pk and gw_row:
        print("\n| figure (llm-gateway / Portkey) | ratio | issue 13 must reach |")
        print("|---|---|---|")
        print(f"| completions/s at c=64 | {ratio(gw_row.rps, pk.rps)} | >= 0.5x |")
        print(f"| CPU ms per request | {ratio(gw_row.cpu_ms, pk.cpu_ms)} | <= 3.5x |")
        print(f"| sequential added latency p50 | {ratio(gw_row.added_p50, pk.added_p50)} | <= 2x |")
        print(
            f"| {args.jobs} jobs of 200 ms (jobs/s) vs Portkey req/s at c=200 "
            f"| {ratio(gw_row.slow_rps, pk.slow_rps)} | >= 0.5x |"
        )
    if gw_row:
        print(f"| worker RSS with {rss[1]} calls in flight | {rss[0]:.0f} MB | report it |")
    print()
    for row in rows.values():
        print(f"- {row.name}: " + "; ".join(row.notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

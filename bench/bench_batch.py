"""Benchmark: a 50,000-line batch through the Batch API, against the bundled mock provider.

Prints, each figure from this same run:
1. accept time: the upload (``POST /v1/files``) and the create (``POST /v1/batches``);
2. validation rate (lines checked per second, ``validating`` -> ``in_progress``) and
   expansion rate (lines made jobs per second while the first ``batches.expand_ahead`` are
   made), then the completion rate while it runs;
3. Redis memory: per line of the stored file, and what the running batch adds per line
   still queued (bounded: only ``batches.expand_ahead`` lines are jobs at once);
4. interactive latency (sequential sync requests, 200 ms upstream) while the batch runs,
   against the same requests on the idle system before it: the ratio, target <= 2x;
   and whether any interactive request was refused (queue_full).

Run: ``make bench-batch`` (``python bench/bench_batch.py --lines 5000`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import bench_stack, chat_body, fleet_ready, pct  # noqa: E402
from tests.support.stack import Stack, wait_for  # noqa: E402


def batch_file(n: int, latency_ms: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": chat_body(f"line {i}", latency_ms=latency_ms),
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def interactive(client: httpx.Client, url: str, n: int) -> tuple[list[float], int]:
    """Sequential sync requests with a 200 ms upstream: latencies (ms) and refusals."""
    out, refused = [], 0
    for i in range(n):
        started = time.perf_counter()
        resp = client.post(url, json=chat_body(f"int{i}", latency_ms=200))
        if resp.status_code != 200:
            refused += 1
            continue
        out.append((time.perf_counter() - started) * 1000)
    return out, refused


def line_sizes(stack: Stack, batch_id: str, expanded: int) -> tuple[int, int, int]:
    """MEMORY USAGE of a live line job, of a finished one, and an output line on average."""
    from shared.batch.batch_store import line_job_id

    live = done = 0
    for n in range(expanded, 0, -1):
        key = f"gw:job:{line_job_id(batch_id, n)}"
        status = stack.redis.hget(key, "status")
        if not live and status in ("queued", "running"):
            live = int(stack.redis.memory_usage(key) or 0)
        if not done and status == "succeeded":
            done = int(stack.redis.memory_usage(key) or 0)
        if live and done:
            break
    results = f"gw:batch:{batch_id}:results"
    count = int(stack.redis.llen(results)) or 1
    per_result = int(stack.redis.memory_usage(results, samples=0) or 0) // count
    return live, done, per_result


def used_memory(stack: Stack) -> int:
    info: Any = stack.redis.info("memory")
    return int(info["used_memory"])


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n## {title}")
    for name, value in rows:
        print(f"  {name:<58} {value}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--line-latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--interactive", type=int, default=40, help="sync requests per phase")
    args = parser.parse_args()

    server, mock, stack = bench_stack(
        "llm-gateway-bench-batch-",
        worker={"lease_s": 15, "reaper_interval_s": 5, "heartbeat_s": 5, "interactive_share": 0.1},
        queue={"max_depth": 10_000},
    )
    try:
        stack.start_worker(concurrency=args.concurrency)
        stack.start_api(workers=2)
        wait_for(
            lambda: fleet_ready(stack.api_url),
            30,
            "ready",
        )
        api = f"{stack.api_url}/v1"
        http = httpx.Client(timeout=600)
        interactive(http, f"{api}/chat/completions", 10)  # warm up
        idle, idle_refused = interactive(http, f"{api}/chat/completions", args.interactive)

        content = batch_file(args.lines, args.line_latency_ms)
        mem_before = used_memory(stack)
        t0 = time.perf_counter()
        f = http.post(
            f"{api}/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", content)}
        ).json()
        t_upload = time.perf_counter() - t0
        mem_file = used_memory(stack)
        t1 = time.perf_counter()
        batch = http.post(
            f"{api}/batches",
            json={
                "input_file_id": f["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ).json()
        t_create = time.perf_counter() - t1
        batch_url = f"{api}/batches/{batch['id']}"

        def get() -> dict[str, Any]:
            b: dict[str, Any] = http.get(batch_url).json()
            return b

        in_progress = wait_for(
            lambda: (lambda b: b if b["status"] != "validating" else None)(get()),
            600,
            "validation",
            interval=0.02,
        )
        t_valid = time.perf_counter() - t1
        assert in_progress["status"] == "in_progress", in_progress
        batch_key = f"gw:batch:{batch['id']}"
        t2 = time.perf_counter()
        wait_for(
            lambda: int(stack.redis.hget(batch_key, "expanded") or 0) >= 1000,
            120,
            "the first 1,000 lines to become jobs",
            interval=0.005,
        )
        t_expand = time.perf_counter() - t2
        expanded_first = int(stack.redis.hget(batch_key, "expanded") or 0)

        # The batch is running: interactive requests meanwhile.
        busy, busy_refused = interactive(http, f"{api}/chat/completions", args.interactive)
        b = get()
        done_at_mid = b["request_counts"]["completed"] + b["request_counts"]["failed"]
        mem_running = used_memory(stack)
        expanded = int(stack.redis.hget(batch_key, "expanded") or 0)
        sizes = line_sizes(stack, batch["id"], expanded)
        elapsed = time.perf_counter() - t2
        queued_lines = args.lines - done_at_mid
        live_jobs = expanded - done_at_mid

        cancel = http.post(f"{batch_url}/cancel")
        ended = wait_for(
            lambda: (lambda b: b if b["status"] in ("cancelled", "completed") else None)(get()),
            300,
            "the cancel",
            interval=0.1,
        )
        counts = ended["request_counts"]
        unanswered = args.lines - counts["completed"] - counts["failed"]
        cancel_row = (
            f"{counts['completed']:,} / {unanswered:,}"
            if cancel.status_code == 200
            else f"completed before the cancel ({counts['completed']:,})"
        )
        report(
            f"1. accept a {args.lines:,}-line batch ({len(content) / 1e6:.1f} MB)",
            [
                ("upload, POST /v1/files (s)", f"{t_upload:.2f}"),
                ("create, POST /v1/batches (s)", f"{t_create:.3f}"),
            ],
        )
        report(
            "2. validation and expansion",
            [
                (
                    "validation (s) / lines per second",
                    f"{t_valid:.2f} / {args.lines / t_valid:,.0f}",
                ),
                (
                    f"first {expanded_first:,} lines made jobs (s) / lines per second",
                    f"{t_expand:.3f} / {expanded_first / t_expand:,.0f}",
                ),
                (
                    "lines made jobs while measured / per second",
                    f"{expanded:,} / {expanded / elapsed:,.0f}",
                ),
                (
                    "lines answered while measured / per second",
                    f"{done_at_mid:,} / {done_at_mid / elapsed:,.0f}",
                ),
            ],
        )
        report(
            "3. Redis memory",
            [
                ("stored file, per line (bytes)", f"{(mem_file - mem_before) / args.lines:,.0f}"),
                ("file line size, on average (bytes)", f"{len(content) / args.lines:,.0f}"),
                (
                    f"running batch adds (MB) for {queued_lines:,} lines still queued",
                    f"{(mem_running - mem_file) / 1e6:.1f}",
                ),
                (
                    "  per queued line (bytes)",
                    f"{(mem_running - mem_file) / max(1, queued_lines):,.0f}",
                ),
                ("  line jobs alive at once (batches.expand_ahead bounds it)", f"{live_jobs:,}"),
                ("  a line job waiting or running (bytes, MEMORY USAGE)", f"{sizes[0]:,}"),
                ("  a finished line's record, kept 10 min (bytes)", f"{sizes[1]:,}"),
                ("  a finished line's output line, until the output file (bytes)", f"{sizes[2]:,}"),
            ],
        )
        ratio50 = pct(busy, 0.5) / pct(idle, 0.5)
        ratio99 = pct(busy, 0.99) / pct(idle, 0.99)
        report(
            f"4. interactive latency, 200 ms upstream ({args.interactive} sequential each)",
            [
                ("idle p50 / p99 (ms)", f"{pct(idle, 0.5):.0f} / {pct(idle, 0.99):.0f}"),
                ("batch running p50 / p99 (ms)", f"{pct(busy, 0.5):.0f} / {pct(busy, 0.99):.0f}"),
                ("RATIO p50 / p99  [target <= 2x]", f"{ratio50:.2f}x / {ratio99:.2f}x"),
                (
                    "interactive requests refused (idle / running)",
                    f"{idle_refused} / {busy_refused}",
                ),
                ("cancel: lines answered / ended with batch_cancelled", cancel_row),
            ],
        )
        return 0
    finally:
        stack.stop()
        mock.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())

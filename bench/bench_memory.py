"""Benchmark: bytes of Redis each finished job holds, by kind and prompt size.

Every finished job keeps a record for ``queue.result_ttl_s`` (24 h by default): what a record
weighs decides how much Redis a day of traffic needs. For each kind of job (synchronous chat,
streamed chat, ``POST /v1/jobs``, a batch line) and each prompt size (short, 4 KB), this
script runs ``--jobs`` jobs through a real stack (API, one worker, the mock provider, the
response cache off so only the jobs are counted) and prints:

- Redis ``used_memory`` added per job once they all finished (everything the jobs left:
  record, owner index, streams, batch files...);
- the ``MEMORY USAGE`` of one finished job's own keys (record, stream);
- the same after ``queue.sync_result_ttl_s`` (``--short-ttl``), when the gateway keeps a slim
  record of a synchronous job (its client already has the answer).

Run: ``make bench-memory`` or ``python bench/bench_memory.py [--jobs 200] [--short-ttl 5]``
(``--short-ttl 0``: a gateway without the setting).
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

from bench.loadgen import running_stack  # noqa: E402
from tests.support.stack import KEYS, Stack, wait_for  # noqa: E402

KINDS = ("sync", "streamed", "async", "batch line")
SIZES = {"short": 40, "4 KB": 4096}


def used_memory(stack: Stack) -> int:
    info: Any = stack.redis.info("memory")
    return int(info["used_memory"])


def prompt(tag: str, size: int) -> str:
    text = f"{tag} "
    return text + "x" * max(0, size - len(text))


def body(tag: str, size: int, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt(tag, size)}]
    return {"model": "mock-model", "messages": messages} | extra


def run_kind(http: httpx.Client, api: str, kind: str, size: int, n: int, tag: str) -> list[str]:
    """Run ``n`` jobs of ``kind`` to the end; their ids."""
    ids: list[str] = []
    if kind == "sync":
        for i in range(n):
            resp = http.post(f"{api}/v1/chat/completions", json=body(f"{tag}{i}", size))
            assert resp.status_code == 200, resp.text
            ids.append(resp.headers["x-gateway-job-id"])
    elif kind == "streamed":
        for i in range(n):
            with http.stream(
                "POST", f"{api}/v1/chat/completions", json=body(f"{tag}{i}", size, stream=True)
            ) as resp:
                assert resp.status_code == 200
                ids.append(resp.headers["x-gateway-job-id"])
                for _ in resp.iter_lines():
                    pass
    elif kind == "async":
        for i in range(n):
            resp = http.post(f"{api}/v1/jobs", json={"request": body(f"{tag}{i}", size)})
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        for job_id in ids:
            status = http.get(f"{api}/v1/jobs/{job_id}?wait=60").json()["status"]
            assert status == "succeeded", status
    else:  # a batch of n lines
        lines = b"".join(
            json.dumps(
                {
                    "custom_id": f"{tag}{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": body(f"{tag}{i}", size),
                }
            ).encode()
            + b"\n"
            for i in range(n)
        )
        f = http.post(
            f"{api}/v1/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", lines)}
        ).json()
        batch = http.post(
            f"{api}/v1/batches",
            json={
                "input_file_id": f["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ).json()
        wait_for(
            lambda: (
                http.get(f"{api}/v1/batches/{batch['id']}").json()["status"]
                in ("completed", "failed", "expired")
            ),
            300,
            "the batch",
            interval=0.2,
        )
        from shared.batch.batch_store import line_job_id

        ids = [line_job_id(batch["id"], i + 1) for i in range(n)]
    return ids


def own_bytes(stack: Stack, job_id: str) -> int:
    total = 0
    for key in (KEYS.job(job_id), KEYS.stream(job_id)):
        total += int(stack.redis.memory_usage(key, samples=0) or 0)
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200, help="jobs per kind and size")
    parser.add_argument("--short-ttl", type=float, default=5.0, help="0: not configured")
    args = parser.parse_args()

    queue: dict[str, Any] = {"max_depth": 100_000}
    if args.short_ttl:
        queue["sync_result_ttl_s"] = args.short_ttl
    rows = []
    with running_stack("llm-gateway-bench-memory-", cache={"enabled": False}, queue=queue) as stack:
        stack.start_worker(concurrency=200)
        stack.start_api(workers=1)
        api = stack.api_url
        http = httpx.Client(timeout=120)
        wait_for(lambda: http.get(f"{api}/health/ready").status_code == 200, 30, "ready")
        run_kind(http, api, "sync", 40, 20, "warm")  # warm up (first keys, scripts)
        for size_name, size in SIZES.items():
            for kind in KINDS:
                before = used_memory(stack)
                ids = run_kind(http, api, kind, size, args.jobs, f"{kind}-{size_name}-")
                time.sleep(0.5)  # the last notices and counters land
                added = (used_memory(stack) - before) / len(ids)
                sample = ids[len(ids) // 2]
                rows.append([kind, size_name, added, own_bytes(stack, sample), ids])
        after: list[float | None] = [None] * len(rows)
        if args.short_ttl:
            time.sleep(args.short_ttl + 3)  # past the short TTL, and a sweep or two
            after = [float(own_bytes(stack, r[4][len(r[4]) // 2])) for r in rows]
    print(f"\n# Redis bytes per finished job ({args.jobs} jobs per row, cache off)\n")
    print(
        "| kind | prompt | used_memory added per job | one job's keys "
        "| one job's keys after the short TTL |"
    )
    print("|---|---|---|---|---|")
    for (kind, size_name, added, own, _), slim in zip(rows, after, strict=True):
        later = f"{slim:,.0f} B" if slim is not None else "n/a"
        print(f"| {kind} | {size_name} | {added:,.0f} B | {own:,} B | {later} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

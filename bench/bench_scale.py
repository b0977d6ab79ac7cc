"""Benchmark: what the status and poll paths cost in a Redis that holds a day of traffic.

A fleet keeps every job record ``queue.result_ttl_s`` (24 h): at 25 jobs/s that is two
million keys. A path that walks the keyspace (SCAN for worker heartbeats) or reads whole
records (a 1 MB prompt on every poll) costs nothing on an empty Redis and seconds on a full
one. This script measures, on one stack and in one run:

- ``GET /health/ready``, ``GET /v1/health``, ``GET /dashboard/data``;
- ``GET /v1/jobs?limit=20`` for a key with 1,000 jobs;
- ``GET /v1/jobs/{id}?wait=1`` on a finished job whose request is 1 MB;

first with only the caller's jobs in Redis, then after filling it with ``--keys`` more (job
hashes of other owners, each with a TTL, written by a Lua script in chunks), and prints the
median of each and the ratio full / empty. Target: every ratio close to 1.

Run: ``python bench/bench_scale.py`` (``--keys 2000000`` by default; ``--keys 200000`` for a
quick look). Not part of the test suite: millions of keys take minutes and a GB of memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import running_stack  # noqa: E402
from tests.support.stack import KEYS, Stack, wait_for  # noqa: E402

# Job-like hashes of other owners, with a TTL as real records have; chunked so that no script
# holds Redis for long.
FILL = """
local base, n = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = base, base + n - 1 do
  local key = KEYS[1] .. i
  redis.call('HSET', key, 'id', 'job_fill' .. i, 'owner', 'other', 'status', 'succeeded',
    'model', 'mock-model', 'priority', 'normal')
  redis.call('EXPIRE', key, 86400)
end
return n
"""
CHUNK = 20_000


def fill(stack: Stack, count: int) -> float:
    script = stack.redis.register_script(FILL)
    t0 = time.perf_counter()
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        script(keys=[KEYS.job("fill")], args=[done, n])
        done += n
    return time.perf_counter() - t0


def median_ms(http: httpx.Client, url: str, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = http.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
    return statistics.median(samples)


def measure(http: httpx.Client, api: str, big_job: str, n: int) -> dict[str, float]:
    paths = {
        "GET /health/ready": "/health/ready",
        "GET /v1/health": "/v1/health",
        "GET /dashboard/data": "/dashboard/data",
        "GET /v1/jobs?limit=20": "/v1/jobs?limit=20",
        "GET /v1/jobs/{id}?wait=1 (1 MB request)": f"/v1/jobs/{big_job}?wait=1",
    }
    return {name: median_ms(http, api + path, n) for name, path in paths.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--jobs", type=int, default=1000, help="the caller's own jobs")
    parser.add_argument("--calls", type=int, default=30, help="calls per path and phase")
    args = parser.parse_args()

    with running_stack("llm-gateway-bench-scale-") as stack:
        stack.start_worker(concurrency=200)
        stack.start_api(workers=1)
        api = stack.api_url
        http = httpx.Client(timeout=600)
        wait_for(lambda: http.get(f"{api}/health/ready").status_code == 200, 30, "ready")
        ids = []
        for i in range(args.jobs):
            body = {"request": {"messages": [{"role": "user", "content": f"scale {i}"}]}}
            ids.append(http.post(f"{api}/v1/jobs", json=body).json()["id"])
        big = http.post(
            f"{api}/v1/jobs",
            json={"request": {"messages": [{"role": "user", "content": "x" * 1_000_000}]}},
        ).json()["id"]
        for job_id in [*ids[-20:], big]:
            status = http.get(f"{api}/v1/jobs/{job_id}?wait=30").json()["status"]
            assert status == "succeeded", status

        measure(http, api, big, 5)  # warm up
        empty = measure(http, api, big, args.calls)
        keys_before = int(stack.redis.dbsize())
        took = fill(stack, args.keys)
        keys_after = int(stack.redis.dbsize())
        full = measure(http, api, big, args.calls)

        print(
            f"\n# status and poll paths, {keys_before:,} keys vs {keys_after:,} keys "
            f"(filled in {took:.0f} s); median of {args.calls} calls each\n"
        )
        print(f"| path | {keys_before:,} keys | {keys_after:,} keys | ratio |")
        print("|---|---|---|---|")
        for name, before in empty.items():
            after = full[name]
            print(f"| {name} | {before:.1f} ms | {after:.1f} ms | {after / before:.2f}x |")
        info = stack.redis.info("memory")
        print(f"\nRedis used_memory: {info['used_memory'] / 2**20:,.0f} MiB")
        return 0


if __name__ == "__main__":
    sys.exit(main())

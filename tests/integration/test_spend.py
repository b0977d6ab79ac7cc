"""Spend with real processes: budgets exact across three API processes under a burst, settled
whatever the end, and one cost figure in the job, the header, the metrics and the usage API."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from gateway_cli.embedded_redis import free_port
from shared.keys import Keys
from tests.support import web
from tests.support.clients import ADMIN_KEY, CLIENT_KEY, sha
from tests.support.stack import CLI, Stack, StackFactory, wait_for

KEYS = Keys("gw")
# micro-USD per token: USD per million tokens.
IN_PRICE, OUT_PRICE = 100, 10_000
BURST_KEY, SETTLE_KEY, KILL_KEY = (
    "sk-burst-" + "d" * 24,
    "sk-settle-" + "e" * 24,
    "sk-kill-" + "f" * 24,
)
TINY_KEY = "sk-tiny-" + "9" * 24
WORDS = "one two three four five"  # the mock's answer: 5 completion tokens
MAX_TOKENS = 5
MESSAGES = [{"role": "user", "content": "hi there"}]  # the mock counts 2 prompt tokens
COST = 2 * IN_PRICE + 5 * OUT_PRICE  # 50,200 micro-USD a request
# The reservation: the prompt's JSON bytes at the input price, max_tokens at the output price.
PROMPT_BYTES = len(json.dumps({"messages": MESSAGES}, separators=(",", ":")).encode())
RESERVATION = PROMPT_BYTES * IN_PRICE + MAX_TOKENS * OUT_PRICE
BUDGET_USD = 100 * COST / 1e6  # covers about 100 requests


def _key(key_id: str, secret: str, usd: float, period: str = "day") -> dict[str, Any]:
    return {"id": key_id, "key_sha256": sha(secret), "budget": {"usd": usd, "period": period}}


@pytest.fixture(scope="module")
def spend_stack(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    price = {"input_per_mtok": IN_PRICE, "output_per_mtok": OUT_PRICE}
    s = make_stack(
        "spend",
        auth={
            "keys": [
                {"id": "team-a", "key_sha256": sha(CLIENT_KEY)},
                _key("burst", BURST_KEY, BUDGET_USD),
                _key("settle", SETTLE_KEY, 1.0, "month"),
                _key("kill", KILL_KEY, 1.0, "total"),
                _key("tiny", TINY_KEY, 0.06, "month"),  # one request, then spent
            ],
            "admin_keys": [{"id": "ops", "key_sha256": sha(ADMIN_KEY)}],
        },
        models={"mock-model": [{"provider": "mock", "model": "mock-model", "price": price}]},
        retry={"base_delay_s": 0.05, "max_delay_s": 1, "max_attempts": 2},
    )
    try:
        s.metrics_port = free_port()  # type: ignore[attr-defined]
        s.start_worker(concurrency=150, metrics_port=s.metrics_port)  # type: ignore[attr-defined]
        s.api_urls = []  # type: ignore[attr-defined]
        for _ in range(3):  # three API processes, one budget
            s.start_api()
            s.api_urls.append(s.api_url)  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()


def _chat(url: str, secret: str, **mock: Any) -> httpx.Response:
    return web.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={
            "messages": MESSAGES,
            "max_tokens": MAX_TOKENS,
            "mock": {"content": WORDS, **mock},
        },
        timeout=120,
    )


def _budget(stack: Stack, key_id: str) -> tuple[int, int]:
    h = stack.redis.hgetall(KEYS.budget(key_id))
    return int(h.get("spent") or 0), int(h.get("reserved") or 0)


def test_a_burst_across_three_api_processes_never_overspends(spend_stack: Stack) -> None:
    stack = spend_stack
    urls: list[str] = stack.api_urls  # type: ignore[attr-defined]
    limit = round(BUDGET_USD * 1e6)
    peak = [0]
    stop = threading.Event()

    def watch() -> None:  # spent + reserved as the burst runs, from Redis
        while not stop.is_set():
            spent, reserved = _budget(stack, "burst")
            peak[0] = max(peak[0], spent + reserved)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(300) as pool:
        answers = list(
            pool.map(lambda i: _chat(urls[i % 3], BURST_KEY, latency_ms=300), range(300))
        )
    stop.set()
    watcher.join()
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(ok) + len(refused) == 300, {a.status_code for a in answers}
    assert all(a.json()["error"]["code"] == "budget_exceeded" for a in refused)
    spent, reserved = _budget(stack, "burst")
    assert reserved == 0  # every reservation settled
    assert spent == len(ok) * COST  # each answer billed once, at its real cost
    assert spent <= limit and peak[0] <= limit, (spent, peak[0], limit)
    assert ok and refused, (len(ok), len(refused))
    # Sequential requests are admitted until less than one reservation is left: the budget is
    # usable to the end, not stranded in reservations.
    more = 0
    while (resp := _chat(urls[more % 3], BURST_KEY)).status_code == 200:
        more += 1
        assert more < 200
    err = resp.json()["error"]
    assert err["code"] == "budget_exceeded" and "resets at" in err["message"]
    assert resp.headers["x-should-retry"] == "false"
    assert 0 < int(resp.headers["Retry-After"]) <= 86400
    spent, reserved = _budget(stack, "burst")
    assert reserved == 0 and spent <= limit
    assert limit - spent < RESERVATION, (limit, spent, RESERVATION)
    assert float(resp.headers["x-gateway-budget-remaining-usd"]) == pytest.approx(
        (limit - spent) / 1e6
    )
    print(
        f"\nburst: {len(ok)} admitted, {len(refused)} refused, peak spent+reserved "
        f"{peak[0] / 1e6:.6f} of {limit / 1e6:.6f} USD; then {more} sequential; "
        f"{(limit - spent) / 1e6:.6f} USD left (one reservation: {RESERVATION / 1e6:.6f})"
    )


def test_settlement_frees_the_difference_and_a_failed_job_costs_nothing(
    spend_stack: Stack,
) -> None:
    stack = spend_stack
    url = stack.api_urls[0]  # type: ignore[attr-defined]
    resp = _chat(url, SETTLE_KEY)
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Gateway-Cost-USD"] == f"{COST / 1e6:g}"
    left = float(resp.headers["x-gateway-budget-remaining-usd"])
    assert left == pytest.approx(1.0 - COST / 1e6)  # the unused reservation came back
    assert _budget(stack, "settle") == (COST, 0)
    failed = _chat(url, SETTLE_KEY, status=500)
    assert failed.status_code == 502, failed.text
    job = stack.redis.hgetall(KEYS.job(failed.headers["X-Gateway-Job-Id"]))
    assert job["status"] == "failed" and int(job.get("cost_micro") or 0) == 0
    assert _budget(stack, "settle") == (COST, 0)  # nothing spent, nothing held


def test_a_worker_killed_mid_call_leaves_no_reservation(spend_stack: Stack) -> None:
    stack = spend_stack
    url = stack.api_urls[0]  # type: ignore[attr-defined]
    victim = stack.start_worker("victim", concurrency=5)
    stack.procs[0].stop()  # only the victim takes the job
    try:
        job = web.post(
            f"{url}/v1/jobs",
            headers={"Authorization": f"Bearer {KILL_KEY}"},
            json={
                "request": {
                    "messages": MESSAGES,
                    "max_tokens": MAX_TOKENS,
                    "mock": {"content": WORDS, "hang_s": 600, "key": "spend-kill"},
                }
            },
            timeout=30,
        ).json()
        wait_for(lambda: stack.mock_calls("spend-kill") >= 1, 30, "the call to start")
        assert _budget(stack, "kill") == (0, RESERVATION)
        victim.kill()
        # The job is taken over by another worker: its call now answers at once.
        stack.redis.hset(
            KEYS.job(job["id"]),
            "request",
            json.dumps(
                {
                    "messages": MESSAGES,
                    "max_tokens": MAX_TOKENS,
                    "mock": {"content": WORDS},
                }
            ),
        )
        stack.start_worker("rescuer", concurrency=20, metrics_port=stack.metrics_port)  # type: ignore[attr-defined]
        done = stack.wait_job(
            job["id"], {"succeeded", "failed"}, 60, {"Authorization": f"Bearer {KILL_KEY}"}
        )
        assert done["status"] == "succeeded", done
        wait_for(lambda: _budget(stack, "kill")[1] == 0, 10, "the reservation to settle")
        assert _budget(stack, "kill") == (COST, 0)
    finally:
        victim.kill()


def test_cost_agrees_in_job_header_metrics_and_usage(spend_stack: Stack) -> None:
    stack = spend_stack
    url = stack.api_urls[1]  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    before = _usage(url, auth)
    ids = []
    for stream in (False, True):
        body = {
            "messages": MESSAGES,
            "max_tokens": MAX_TOKENS,
            "mock": {"content": WORDS},
            "stream": stream,
        }
        resp = web.post(f"{url}/v1/chat/completions", headers=auth, json=body, timeout=60)
        assert resp.status_code == 200, resp.text
        ids.append(resp.headers["X-Gateway-Job-Id"])
        if not stream:
            assert resp.headers["X-Gateway-Cost-USD"] == f"{COST / 1e6:g}"
    for job_id in ids:
        job = stack.wait_job(job_id, {"succeeded"}, 30, auth)
        assert job["cost_usd"] == pytest.approx(COST / 1e6)
        assert job["attempts"][-1]["cost_usd"] == pytest.approx(COST / 1e6)
    after = _usage(url, auth)
    assert after["requests"] - before["requests"] == 2
    assert after["cost_usd"] - before["cost_usd"] == pytest.approx(2 * COST / 1e6)
    assert after["output_tokens"] - before["output_tokens"] == 10
    admin = web.get(
        f"{url}/admin/usage", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    ).json()
    mine = [r for r in admin["data"] if r["key_id"] == "team-a"]
    assert mine and mine[0]["cost_usd"] == pytest.approx(after["cost_usd"])
    port = stack.metrics_port  # type: ignore[attr-defined]
    text = web.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("gateway_cost_usd_total{") and 'key_id="team-a"' in ln
    )
    # The one worker serving now (the rescuer of the test above, or the first) ran both jobs,
    # and no other job of team-a.
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(2 * COST / 1e6)


def _usage(url: str, auth: dict[str, str]) -> dict[str, Any]:
    doc = web.get(f"{url}/v1/usage?group_by=model", headers=auth, timeout=10).json()
    return dict(doc["total"])


def test_the_openai_client_sees_budget_exceeded_and_the_cli_prints_usage(
    spend_stack: Stack,
) -> None:
    stack = spend_stack
    url = stack.api_urls[2]  # type: ignore[attr-defined]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TINY_KEY, max_retries=0)
    body: dict[str, Any] = {"mock": {"content": WORDS}}
    raw = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=MESSAGES, max_tokens=MAX_TOKENS, extra_body=body
    )
    assert raw.parse().choices[0].message.content == WORDS
    assert raw.headers["X-Gateway-Cost-USD"] == f"{COST / 1e6:g}"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="mock-model", messages=MESSAGES, max_tokens=MAX_TOKENS, extra_body=body
        )
    assert info.value.code == "budget_exceeded"
    assert "resets at" in info.value.message
    # Without max_tokens the cost has no bound here (the mock's output limit is unknown).
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="mock-model", messages=MESSAGES, extra_body=body)
    assert bad.value.param == "max_tokens"
    # A batch of a spent key is refused as a whole.
    spent = openai.OpenAI(base_url=f"{url}/v1", api_key=BURST_KEY, max_retries=0)
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    f = spent.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    _spend_all(stack, "burst")
    with pytest.raises(openai.RateLimitError):
        spent.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    out = subprocess.run(
        [*CLI, "usage", "--config", str(stack.config_path), "--key-id", "tiny"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"{COST / 1e6:.6f}" in out.stdout, out.stdout
    assert "budget tiny: $0.06 a month" in out.stdout, out.stdout


def _spend_all(stack: Stack, key_id: str) -> None:
    """All of the key's day budget spent, in today's period (Redis's clock, UTC), whether or
    not this process ran the burst test: a hash without ``period`` is a new period, spent 0."""
    now = dt.datetime.fromtimestamp(stack.redis.time()[0], dt.UTC)
    stack.redis.hset(
        KEYS.budget(key_id),
        mapping={"period": now.strftime("d%Y%m%d"), "spent": round(BUDGET_USD * 1e6)},
    )

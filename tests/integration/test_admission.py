"""Admission control with real processes: per-key limits exact across several API processes,
concurrent-job slots freed by real workers, provider quotas that delay instead of failing, and
the response cache answering at the front door."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import yaml

from tests.support import web
from tests.support.clients import CLIENT_KEY, OTHER_KEY, sha
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

H = {"Authorization": f"Bearer {CLIENT_KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


def limited_auth(**limits: Any) -> dict[str, Any]:
    return {
        "keys": [
            {"id": "limited", "key_sha256": sha(CLIENT_KEY), **limits},
            {"id": "free", "key_sha256": sha(OTHER_KEY)},
        ]
    }


def job(text: str, **mock: Any) -> dict[str, Any]:
    return {"request": {"messages": [{"role": "user", "content": text}], "mock": mock}}


@pytest.fixture
def three_apis(
    make_stack: StackFactory,
) -> Iterator[tuple[Stack, list[str]]]:
    """Three separate API servers (two gunicorn workers each) on one Redis; no worker."""
    s = make_stack("rl", auth=limited_auth(rpm=20))
    try:
        urls = []
        for _ in range(3):
            s.start_api(workers=2)
            urls.append(s.api_url)
        yield s, urls
    finally:
        s.stop()


@pytest.fixture
def quota_stack(
    make_stack: StackFactory,
) -> Iterator[Callable[..., Stack]]:
    """A stack whose provider ``mock`` has these fleet-wide quota fields (processes not
    started); stopped after the test."""
    made: list[Stack] = []

    def make(**provider: Any) -> Stack:
        s = make_stack("quota")
        s.config["providers"]["mock"].update(provider)
        s.config_path.write_text(yaml.safe_dump(s.config))
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_rpm_is_exact_across_six_api_processes(three_apis: tuple[Stack, list[str]]) -> None:
    stack, urls = three_apis
    # Warm every process (connections, scripts) with a key that has no limit.
    for url in urls:
        for _ in range(4):
            assert web.get(f"{url}/v1/models", headers=OTHER).status_code == 200

    def post(i: int) -> httpx.Response:
        return web.post(f"{urls[i % 3]}/v1/jobs", headers=H, json=job(f"burst {i}"), timeout=30)

    started = time.time()
    with ThreadPoolExecutor(48) as pool:
        answers = list(pool.map(post, range(150)))
    elapsed = time.time() - started
    admitted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) + len(refused) == 150, {a.status_code for a in answers}
    # rpm 20: a burst of 20, then one every 3 s.
    assert 20 <= len(admitted) <= 20 + int(elapsed / 3) + 1, (len(admitted), elapsed)
    assert len(stack.redis.keys(KEYS.job("*"))) == len(admitted)
    err = refused[0]
    assert err.json()["error"]["code"] == "rate_limit_exceeded"
    assert err.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(err.headers["Retry-After"]) <= 3
    for a in answers:
        assert a.headers["x-ratelimit-limit-requests"] == "20"
        assert "x-ratelimit-remaining-requests" in a.headers
        assert "x-ratelimit-reset-requests" in a.headers

    # No window boundary to game: after one interval exactly one more request gets in. The
    # probe starts from an exhausted limit (on a slow day a token may have come back since
    # the burst: it is taken first, at most one per interval).
    probe = post(0)
    for _ in range(3):
        if probe.status_code == 429:
            break
        probe = post(0)
    assert probe.status_code == 429
    time.sleep(float(probe.headers["Retry-After"]) + 0.2)
    with ThreadPoolExecutor(12) as pool:
        again = list(pool.map(post, range(12)))
    assert sum(1 for a in again if a.status_code == 202) == 1
    # Reads carry the headers too and take nothing.
    status = web.get(f"{urls[1]}/v1/jobs", headers=H)
    assert status.status_code == 200 and status.headers["x-ratelimit-remaining-requests"] == "0"


def test_concurrent_jobs_slot_frees_when_a_worker_finishes(
    make_stack: StackFactory,
) -> None:
    s = make_stack("conc", auth=limited_auth(max_concurrent=2))
    try:
        s.start_all()
        first = [
            web.post(f"{s.api_url}/v1/jobs", headers=H, json=job(f"slow {i}", latency_ms=1500))
            for i in range(2)
        ]
        assert [a.status_code for a in first] == [202, 202]
        third = web.post(f"{s.api_url}/v1/jobs", headers=H, json=job("third"))
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limit_exceeded"
        assert "concurrent jobs" in third.json()["error"]["message"]
        # Another key is not affected.
        assert web.post(f"{s.api_url}/v1/jobs", headers=OTHER, json=job("x")).status_code == 202
        s.wait_job(first[0].json()["id"], {"succeeded"}, headers=H)
        fourth = web.post(f"{s.api_url}/v1/jobs", headers=H, json=job("fourth", latency_ms=3000))
        assert fourth.status_code == 202
        # A cancelled job frees its slot as well.
        cancel = web.delete(f"{s.api_url}/v1/jobs/{fourth.json()['id']}", headers=H)
        assert cancel.status_code in (200, 202)
        assert web.post(f"{s.api_url}/v1/jobs", headers=H, json=job("fifth")).status_code == 202
    finally:
        s.stop()


def test_tokens_per_minute_charged_by_estimate_then_real_usage(
    make_stack: StackFactory,
) -> None:
    s = make_stack("tpm", auth=limited_auth(tpm=2000))
    try:
        s.start_all()
        body = {"messages": [{"role": "user", "content": "count me"}], "max_tokens": 1500}
        first = web.post(f"{s.api_url}/v1/chat/completions", headers=H, json=body, timeout=30)
        assert first.status_code == 200
        # Charged ~1,500 up front (the cap); the mock's answer used a few tokens, so the
        # worker gave most of it back.
        used = first.json()["usage"]["total_tokens"]
        assert used < 100
        status = web.get(f"{s.api_url}/v1/jobs", headers=H)
        remaining = int(status.headers["x-ratelimit-remaining-tokens"])
        assert 2000 - used - 5 <= remaining <= 2000
        big = {**body, "max_tokens": 5000}
        too_large = web.post(f"{s.api_url}/v1/chat/completions", headers=H, json=big)
        assert too_large.status_code == 429 and too_large.headers["x-should-retry"] == "false"
    finally:
        s.stop()


def test_provider_quota_delays_jobs_instead_of_failing_them(
    quota_stack: Callable[..., Stack], unique: str
) -> None:
    s = quota_stack(rpm=20, max_concurrent=3)
    s.start_all()
    started = time.time()
    ids = [
        web.post(
            f"{s.api_url}/v1/jobs", json=job(f"{unique} {i}", latency_ms=300, key=unique)
        ).json()["id"]
        for i in range(22)
    ]
    jobs = [s.wait_job(i, {"succeeded", "failed", "expired"}, timeout=40) for i in ids]
    failed = [(j["status"], j["error"], j["attempts"]) for j in jobs if j["status"] != "succeeded"]
    assert not failed
    assert all(len(j["attempts"]) == 1 for j in jobs)  # delayed, never a failed attempt
    assert s.mock_calls(unique) == 22
    calls = sorted(
        (a["started_at"], a["started_at"] + a["duration_ms"] / 1000)
        for j in jobs
        for a in j["attempts"]
    )
    # max_concurrent 3: never more than three calls at once, fleet-wide.
    peak = max(sum(1 for b, e in calls if b <= start < e) for start, _ in calls)
    assert peak <= 3
    # rpm 20: a burst of 20, then one every 3 s: the 22nd call starts >= 3 s after the 21st
    # could, i.e. >= ~6 s after the burst.
    assert calls[-1][0] - started >= 5.5


def test_cache_hit_is_served_without_enqueuing(stack: Stack, unique: str) -> None:
    body = {
        "messages": [{"role": "user", "content": f"cache {unique}"}],
        "temperature": 0,
        "mock": {"key": unique},
    }
    url = f"{stack.api_url}/v1/chat/completions"
    miss = web.post(url, headers=H, json=body, timeout=30)
    assert miss.status_code == 200 and miss.headers["X-Gateway-Cache"] == "miss"
    hit = web.post(url, headers=H, json=body, timeout=30)
    assert hit.status_code == 200 and hit.headers["X-Gateway-Cache"] == "hit"
    assert hit.json() == miss.json() and "X-Gateway-Job-Id" not in hit.headers
    assert stack.mock_calls(unique) == 1
    # Tenant namespace: another key does not see team-a's answer.
    other = web.post(url, headers=OTHER, json=body, timeout=30)
    assert other.headers["X-Gateway-Cache"] == "miss"
    assert stack.mock_calls(unique) == 2
    # no-cache skips the lookup; the answer is stored again.
    fresh = web.post(url, headers={**H, "Cache-Control": "no-cache"}, json=body, timeout=30)
    assert fresh.headers["X-Gateway-Cache"] == "miss" and stack.mock_calls(unique) == 3
    # A job for a cached request is recorded as a hit, already succeeded, never enqueued.
    accepted = web.post(f"{stack.api_url}/v1/jobs", headers=H, json={"request": body})
    assert accepted.status_code == 202
    record = accepted.json()
    assert record["status"] == "succeeded" and record["cache"] == "hit"
    assert record["result"] == fresh.json() and record["attempts"] == []
    assert stack.mock_calls(unique) == 3
    metrics = web.get(f"{stack.api_url}/metrics").text
    assert 'gateway_cache_lookups_total{result="hit"}' in metrics


def test_cache_skips_non_deterministic_and_no_store_requests(stack: Stack, unique: str) -> None:
    url = f"{stack.api_url}/v1/chat/completions"
    warm = {
        "messages": [{"role": "user", "content": unique}],
        "temperature": 0.7,
        "mock": {"key": unique},
    }
    for _ in range(2):
        assert web.post(url, headers=H, json=warm, timeout=30).headers["X-Gateway-Cache"] == "miss"
    assert stack.mock_calls(unique) == 2
    cold = {**warm, "temperature": 0, "gateway": {"cache": "no-store"}}
    for _ in range(2):
        assert web.post(url, headers=H, json=cold, timeout=30).headers["X-Gateway-Cache"] == "miss"
    assert stack.mock_calls(unique) == 4
    seeded = {**warm, "seed": 42, "temperature": 1}
    headers = {**H, "Cache-Control": "no-store"}
    for _ in range(2):
        assert web.post(url, headers=headers, json=seeded, timeout=30).status_code == 200
    assert stack.mock_calls(unique) == 6
    # Without no-store the seeded request is stored, and max-age bounds what a hit may be.
    assert web.post(url, headers=H, json=seeded, timeout=30).headers["X-Gateway-Cache"] == "miss"
    time.sleep(1.2)
    aged = web.post(url, headers={**H, "Cache-Control": "max-age=1"}, json=seeded, timeout=30)
    assert aged.headers["X-Gateway-Cache"] == "miss"
    hit = web.post(url, headers={**H, "Cache-Control": "max-age=60"}, json=seeded, timeout=30)
    assert hit.headers["X-Gateway-Cache"] == "hit" and int(hit.headers["Age"]) >= 0


def test_a_worker_killed_mid_call_does_not_leak_its_provider_slot(
    quota_stack: Callable[..., Stack], unique: str
) -> None:
    s = quota_stack(max_concurrent=1, timeout_s=3)
    s.start_api()
    victim = s.start_worker("victim")
    job_id = web.post(f"{s.api_url}/v1/jobs", json=job(unique, latency_ms=2000, key=unique)).json()[
        "id"
    ]
    wait_for(lambda: s.mock_calls(unique) == 1, 20, "the call in flight")
    taken_at = time.time()
    victim.kill()  # SIGKILL while holding the provider's only slot
    s.start_worker("rescuer")
    done = s.wait_job(job_id, {"succeeded", "failed", "expired"}, timeout=40)
    assert done["status"] == "succeeded", done["error"]
    assert s.mock_calls(unique) == 2
    rerun = done["attempts"][-1]["started_at"]
    # The dead call's slot was honoured until it expired (timeout 3 s + 5 s margin), then
    # freed: the quota held, and nothing leaked.
    assert rerun - taken_at >= 3 + 5 - 1.5
    assert s.redis.zcard(KEYS.quota("mock", "concurrent")) == 0

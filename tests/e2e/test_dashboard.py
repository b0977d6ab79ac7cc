"""The dashboard in a real headless Chromium (Debian's package) against a running stack: after
a provider goes down, a person sees its breaker open and the failed jobs listed. Also the
sign-in: an admin key posted once gives a session cookie that another API process honours."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import web
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY
from tests.support.stack import KEYS, Stack, StackFactory, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # the test set-up installs it (scripts/ensure-chromium.sh); never skipped
        pytest.fail("chromium is not installed: run scripts/ensure-chromium.sh (make test does)")
    return found


def render(url: str, profile: Path, *extra: str) -> str:
    """The page's DOM after its scripts ran (virtual time lets its first fetch finish)."""
    out = subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            *extra,
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def down(make_stack: StackFactory, mock_port: int) -> Iterator[Stack]:
    """Open on loopback (no client keys), with a provider ("dead") that answers 503."""
    s = make_stack(
        "dash",
        providers={
            "dead": {"type": "mock", "base_url": f"http://127.0.0.1:{mock_port}/v1", "timeout_s": 5}
        },
        models={"dead-model": [{"provider": "dead", "model": "m"}]},
        breaker={"consecutive_failures": 2, "min_calls": 2, "open_s": 120},
        retry={"max_attempts": 1, "max_total_attempts": 1, "base_delay_s": 0.05},
        fallbacks={"order": []},
    )
    try:
        s.start_worker(concurrency=20)
        s.start_api(workers=2)
        yield s
    finally:
        s.stop()


def test_a_person_sees_the_broken_provider_and_its_failed_jobs(
    down: Stack, tmp_path: Path, unique: str
) -> None:
    api = down.api_url
    ok = web.post(
        f"{api}/v1/chat/completions",
        json={"model": "mock-model", "messages": [{"role": "user", "content": unique}]},
        timeout=30,
    )
    assert ok.status_code == 200
    failed = []
    for i in range(3):
        r = web.post(
            f"{api}/v1/jobs",
            json={
                "request": {
                    "model": "dead-model",
                    "messages": [{"role": "user", "content": f"{unique}{i}"}],
                    "mock": {"status": 503, "message": "upstream overloaded"},
                }
            },
        )
        assert r.status_code == 202, r.text
        failed.append(r.json()["id"])
    for job_id in failed:
        down.wait_job(job_id, {"failed"}, 60)
    invalid = web.post(f"{api}/v1/jobs", json={"request": {"model": "dead-model"}})
    assert invalid.status_code == 400, invalid.text  # an error answer at the jobs door
    wait_for(lambda: down.redis.hget(KEYS.breaker("dead"), "state") == "open", 30, "the breaker")

    dom = render(f"{api}/dashboard", tmp_path / "profile")
    assert 'data-loaded="1"' in dom, dom[-3000:]
    row = re.search(r'<tr data-provider="dead">(.*?)</tr>', dom, re.S)
    assert row is not None, dom[-3000:]
    assert 'class="pill open"' in row.group(1) and "left" in row.group(1)  # open, time left
    mock_row = re.search(r'<tr data-provider="mock">(.*?)</tr>', dom, re.S)
    assert mock_row is not None and 'class="pill closed"' in mock_row.group(1)
    for job_id in failed:  # each failed job listed, with a link to it
        assert f'href="/dashboard/jobs/{job_id}"' in dom
    assert "upstream overloaded" in dom  # the error shown, with its class
    # The jobs chart drew the failures; the counters count them.
    assert re.search(r"<rect [^>]*fill=\"#f87171\"", dom)
    # Per door, the jobs it accepted and its error answers (fleet-wide counts).
    for door, jobs, errors in (("chat", "1", "0"), ("jobs", "3", "1")):
        door_row = re.search(rf'<tr data-door="{door}">(.*?)</tr>', dom, re.S)
        assert door_row is not None, dom[-3000:]
        assert re.search(rf"data-door-jobs[^>]*>{jobs}<", door_row.group(1)), door_row.group(1)
        assert re.search(rf"data-door-errors[^>]*>{errors}<", door_row.group(1))

    shot = tmp_path / "dashboard.png"
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--virtual-time-budget=8000",
            "--window-size=1400,1100",
            f"--screenshot={shot}",
            f"{api}/dashboard",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    if os.environ.get("GATEWAY_UPDATE_SCREENSHOT"):  # README's picture, made by this test
        shutil.copy(shot, SCREENSHOT)


@pytest.fixture(scope="module")
def keyed(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    s = make_stack("dash-keys", auth=AUTH)
    try:
        s.start_worker(concurrency=10)
        s.start_api(workers=2)
        yield s
    finally:
        s.stop()


def test_the_dashboard_needs_an_admin_and_a_sign_in_works_on_any_process(keyed: Stack) -> None:
    api = keyed.api_url
    page = web.get(f"{api}/dashboard")
    assert page.status_code == 200 and 'action="/dashboard/login"' in page.text  # sign-in form
    assert web.get(f"{api}/dashboard/data").status_code == 401
    client_key = {"Authorization": f"Bearer {CLIENT_KEY}"}
    assert web.get(f"{api}/dashboard/data", headers=client_key).status_code == 403
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert web.get(f"{api}/dashboard/data", headers=admin).status_code == 200

    assert web.post(f"{api}/dashboard/login", data={"key": CLIENT_KEY}).status_code == 401
    signed = web.post(f"{api}/dashboard/login", data={"key": ADMIN_KEY})
    assert signed.status_code == 303
    cookie = signed.cookies.get("gw_dashboard")
    assert cookie and ADMIN_KEY not in cookie
    # A second API process (its own port) knows the session: it lives in Redis.
    other = keyed.start_api()
    other_url = keyed.api_url
    assert other_url != api
    data = web.get(f"{other_url}/dashboard/data", cookies={"gw_dashboard": cookie})
    assert data.status_code == 200 and "providers" in data.json()
    shown = web.get(f"{other_url}/dashboard", cookies={"gw_dashboard": cookie})
    assert 'id="providers"' in shown.text
    web.post(f"{other_url}/dashboard/logout", cookies={"gw_dashboard": cookie})
    assert web.get(f"{api}/dashboard/data", cookies={"gw_dashboard": cookie}).status_code == 401
    other.stop()

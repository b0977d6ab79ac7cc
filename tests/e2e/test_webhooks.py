"""Webhooks per Standard Webhooks against running processes and a local receiver: batch and
job events, verified with the official SDK's ``client.webhooks.unwrap``; a receiver that
fails twice gets the event on the third try; a delivery that failed is in the log and is
replayed; a redirect is not followed; secrets never show in config."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from tests.e2e.test_batches import line, submit, wait_status
from tests.support import web
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY, OTHER_KEY
from tests.support.stack import Stack, StackFactory, wait_for

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
FLAKY_SECRET = "whsec_" + base64.b64encode(b"f" * 32).decode()


class Receiver:
    """A local webhook receiver: records every request; ``/flaky`` fails each event twice,
    ``/down`` fails until ``up`` is set, ``/moved`` redirects to ``/trap``."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.flaky_seen: dict[str, int] = {}
        self.up = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.got.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = 200
                if self.path == "/flaky":  # each event's first two attempts fail
                    event = self.headers.get("webhook-id", "")
                    outer.flaky_seen[event] = outer.flaky_seen.get(event, 0) + 1
                    status = 500 if outer.flaky_seen[event] <= 2 else 200
                elif self.path == "/down" and not outer.up.is_set():
                    status = 503
                elif self.path == "/moved":
                    self.send_response(302)
                    self.send_header("location", "/trap")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("content-length", "0")
                if status >= 500:
                    self.send_header("retry-after", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [g for g in self.got if g["path"] == path]


@pytest.fixture(scope="module")
def hooks(
    make_stack: StackFactory,
) -> Iterator[tuple[Stack, Receiver]]:
    rx = Receiver()
    keys = [dict(k) for k in AUTH["keys"]]
    keys[0]["webhooks"] = [
        {"url": f"{rx.url}/ok", "secret": SECRET, "previous_secrets": [OLD_SECRET]},
        {"url": f"{rx.url}/flaky", "secret": FLAKY_SECRET, "events": ["batch.completed"]},
    ]
    keys[1]["webhooks"] = [
        {"url": f"{rx.url}/down", "secret": SECRET, "events": ["job.succeeded"]},
        {"url": f"{rx.url}/moved", "secret": SECRET, "events": ["job.failed"]},
    ]
    s = make_stack(
        "hooks",
        auth={**AUTH, "keys": keys},
        webhooks={"allow_private": True, "backoff_s": 0.1, "max_attempts": 3, "timeout_s": 5},
    )
    try:
        s.start_worker(concurrency=20)
        s.start_api()
        yield s, rx
    finally:
        s.stop()
        rx.server.shutdown()


def _client(stack: Stack, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=60)


def _events(rx: Receiver, path: str, secret: str, data_id: str) -> list[Any]:
    client = openai.OpenAI(api_key="unused")
    out = []
    for g in rx.at(path):
        event = client.webhooks.unwrap(g["body"], g["headers"], secret=secret)
        if event.data.id == data_id:
            out.append((event, g))
    return out


def test_batch_and_job_events_arrive_signed(hooks: tuple[Stack, Receiver], unique: str) -> None:
    stack, rx = hooks
    client = _client(stack)
    batch = submit(client, [line(f"{unique}-{i}") for i in range(3)])
    wait_status(client, batch.id, {"completed"}, 60)
    got = wait_for(lambda: _events(rx, "/ok", SECRET, batch.id), 30, "batch.completed")
    event, raw = got[0]
    assert event.type == "batch.completed" and event.object == "event"
    assert event.id.startswith("evt_") and raw["headers"]["webhook-id"] == event.id
    # Signed with the previous secret too (a rotation): a receiver on either verifies.
    assert _events(rx, "/ok", OLD_SECRET, batch.id)
    assert len(raw["headers"]["webhook-signature"].split()) == 2
    assert json.loads(raw["body"]) == {
        "id": event.id,
        "object": "event",
        "type": "batch.completed",
        "created_at": event.created_at,
        "data": {"id": batch.id},
    }
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x").webhooks.unwrap(raw["body"], raw["headers"], secret=FLAKY_SECRET)

    # A job that asks for events, from POST /v1/jobs and from a chat completion's extension.
    resp = web.post(
        f"{stack.api_url}/v1/jobs",
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        json={"request": {"messages": [{"role": "user", "content": unique}]}, "webhook": True},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    job_events = wait_for(lambda: _events(rx, "/ok", SECRET, job_id), 30, "job.succeeded")
    assert [e.type for e, _ in job_events] == ["job.succeeded"]
    # A job that did not ask sends nothing: it ends before the next one, whose event comes
    # through the same first-in first-out outbox.
    plain = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=[{"role": "user", "content": unique + "-plain"}]
    )
    plain_job = plain.headers["x-gateway-job-id"]
    chat = client.chat.completions.with_raw_response.create(
        model="mock-model",
        messages=[{"role": "user", "content": unique}],
        extra_body={"gateway": {"webhook": True}},
    )
    chat_job = chat.headers["x-gateway-job-id"]
    assert wait_for(lambda: _events(rx, "/ok", SECRET, chat_job), 30, "the chat job's event")
    assert not _events(rx, "/ok", SECRET, plain_job)


def test_a_receiver_that_fails_twice_gets_it_the_third_time(
    hooks: tuple[Stack, Receiver], unique: str
) -> None:
    stack, rx = hooks
    client = _client(stack)
    batch = submit(client, [line(f"{unique}-x")])
    wait_status(client, batch.id, {"completed"}, 60)
    tries = wait_for(
        lambda: (lambda e: e if len(e) == 3 else None)(
            _events(rx, "/flaky", FLAKY_SECRET, batch.id)
        ),
        30,
        "three attempts at /flaky",
    )
    assert len({g["headers"]["webhook-id"] for _, g in tries}) == 1  # one event, three tries
    log = web.get(
        f"{stack.api_url}/v1/webhook_deliveries",
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        params={"limit": 100},
    ).json()
    mine = [
        d
        for d in log["data"]
        if d["url"].endswith("/flaky") and d["event"]["data"]["id"] == batch.id
    ]
    assert len(mine) == 1
    d = wait_for(
        lambda: (lambda x: x if x["status"] == "succeeded" else None)(
            web.get(
                f"{stack.api_url}/v1/webhook_deliveries/{mine[0]['id']}",
                headers={"Authorization": f"Bearer {CLIENT_KEY}"},
            ).json()
        ),
        10,
        "the delivery to be recorded succeeded",
    )
    assert [a["status_code"] for a in d["attempts"]] == [500, 500, 200]


def test_a_failed_delivery_is_logged_and_replayed(
    hooks: tuple[Stack, Receiver], unique: str
) -> None:
    stack, rx = hooks
    auth = {"Authorization": f"Bearer {OTHER_KEY}"}
    resp = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=auth,
        json={"request": {"messages": [{"role": "user", "content": unique}]}, "webhook": True},
    )
    job_id = resp.json()["id"]

    def failed() -> Any:
        got = web.get(
            f"{stack.api_url}/v1/webhook_deliveries", headers=auth, params={"status": "failed"}
        ).json()["data"]
        return [d for d in got if d["event"]["data"]["id"] == job_id]

    [d] = wait_for(failed, 30, "the delivery to /down to fail")
    assert d["url"].endswith("/down") and len(d["attempts"]) == 3  # webhooks.max_attempts
    assert all(a["status_code"] == 503 for a in d["attempts"])
    # Another key cannot see or replay it.
    other = {"Authorization": f"Bearer {CLIENT_KEY}"}
    assert (
        web.post(
            f"{stack.api_url}/v1/webhook_deliveries/{d['id']}/replay", headers=other
        ).status_code
        == 404
    )

    rx.up.set()
    replayed = web.post(f"{stack.api_url}/v1/webhook_deliveries/{d['id']}/replay", headers=auth)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    done = wait_for(
        lambda: (lambda x: x if x["status"] == "succeeded" else None)(
            web.get(f"{stack.api_url}/v1/webhook_deliveries/{d['id']}", headers=auth).json()
        ),
        30,
        "the replay to succeed",
    )
    assert done["attempts"][-1]["status_code"] == 200 and done["replays"] == 1
    assert _events(rx, "/down", SECRET, job_id)[-1][0].type == "job.succeeded"


def test_a_redirect_is_not_followed(hooks: tuple[Stack, Receiver], unique: str) -> None:
    stack, rx = hooks
    auth = {"Authorization": f"Bearer {OTHER_KEY}"}
    resp = web.post(
        f"{stack.api_url}/v1/jobs",
        headers=auth,
        json={
            "request": {
                "messages": [{"role": "user", "content": unique}],
                "mock": {"status": 400},
            },
            "webhook": True,
        },
    )
    job_id = resp.json()["id"]
    wait_for(lambda: _events(rx, "/moved", SECRET, job_id), 30, "job.failed at /moved")
    wait_for(lambda: len(_events(rx, "/moved", SECRET, job_id)) == 3, 30, "every attempt at /moved")
    assert not rx.at("/trap")


def test_webhook_secrets_never_show_in_config(hooks: tuple[Stack, Receiver]) -> None:
    stack, _ = hooks
    shown = web.get(
        f"{stack.api_url}/admin/config", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert shown.status_code == 200
    text = shown.text
    assert SECRET not in text and OLD_SECRET not in text and FLAKY_SECRET not in text
    assert "whsec_" not in text

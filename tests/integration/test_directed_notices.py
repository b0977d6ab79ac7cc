"""A job's completion notice goes to the one API process waiting for it, unless another
process watches the job too (real redis-server, real pub/sub)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from gateway_api import waiter as waiter_module
from gateway_api.waiter import CompletionHub
from shared.errors import GatewayError
from shared.keys import Keys
from shared.state.jobs import JobStore
from shared.state.notice import job_id_of
from tests.support.jobs import queued_job
from tests.support.stack import wait_for

KEYS = Keys("gw")


class Heard:
    """Every notice on every done channel (``gw:done`` and the per-process ones), by channel."""

    def __init__(self, url: str) -> None:
        self.by_channel: dict[str, list[str]] = {}
        self._pubsub = redis.Redis.from_url(url, decode_responses=True).pubsub()
        self._pubsub.psubscribe(KEYS.done_channel + "*")
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self._ready.wait(5)

    def _run(self) -> None:
        try:
            for m in self._pubsub.listen():
                if m["type"] == "psubscribe":
                    self._ready.set()
                elif m["type"] == "pmessage":
                    self.by_channel.setdefault(m["channel"], []).append(job_id_of(m["data"]))
        except (redis.ConnectionError, ValueError, AttributeError):
            return

    def channels_of(self, job_id: str) -> set[str]:
        return {c for c, ids in self.by_channel.items() if job_id in ids}

    def close(self) -> None:
        self._pubsub.close()


@pytest.fixture
def parts(redis_db: str) -> Iterator[tuple[JobStore, CompletionHub, CompletionHub, Heard]]:
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    store = JobStore(client, KEYS, 3600)
    # Two hubs stand for two API processes (each names a channel of its own).
    a = CompletionHub(client, KEYS.done_channel, KEYS.done_channel_of, store.watch)
    b = CompletionHub(client, KEYS.done_channel, KEYS.done_channel_of, store.watch)
    heard = Heard(redis_db)
    yield store, a, b, heard
    heard.close()


def finish_soon(store: JobStore, job_id: str, delay_s: float = 0.2) -> threading.Thread:
    def run() -> None:
        # A jitter that varies where the finish falls against the waiter's steps (before,
        # during or after its watch); the assertions hold in every order.
        time.sleep(delay_s)
        assert store.begin(job_id, "t", 5, 5).outcome.value == "ok"
        assert store.finish(job_id, "t", "succeeded", {"result": {"ok": 1}}) == 1

    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_job_its_creator_waits_for_wakes_only_the_creator(parts) -> None:  # type: ignore[no-untyped-def]
    store, a, b, heard = parts
    own = a.direct_channel()
    assert own.startswith(KEYS.done_channel + ":") and own != b.direct_channel()
    job = queued_job()
    with a.expect(job.id) as waiter:
        store.create(replace(job, notify=own))
        worker = finish_soon(store, job.id)
        got = waiter.wait(10, lambda: store.get(job.id), job.id)
    worker.join()
    assert got is not None and got.status == "succeeded"
    wait_for(lambda: heard.channels_of(job.id), 10, "the job's notice")
    assert heard.channels_of(job.id) == {own}  # not the fleet's channel: b never woke


def test_another_process_that_waits_makes_the_notice_reach_everyone(  # type: ignore[no-untyped-def]
    parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raced: the job finishes just before, during or after b marks it watched. Whatever
    the order, b's wait ends with the outcome by the notice or by its read after the watch,
    never by its periodic re-read (made longer than the wait here)."""
    store, a, b, heard = parts
    monkeypatch.setattr(waiter_module, "RECHECK_S", 60.0)
    timeout = 30.0
    for i in range(30):
        job = queued_job(notify=a.direct_channel())
        store.create(job)
        worker = finish_soon(store, job.id, delay_s=random.choice([0, 0, 0.001, 0.005]))
        started = time.monotonic()
        got = b.wait(job.id, timeout, lambda: store.get(job.id), job.notify)  # noqa: B023
        waited = time.monotonic() - started
        worker.join()
        assert got is not None and got.status == "succeeded", i
        assert waited < timeout / 2, f"round {i}: the notice was missed ({waited:.1f}s)"
    # Once watched, a notice goes to the fleet's channel (a finish before the watch went to
    # a's own channel, which nobody but a hears).
    assert heard.by_channel.get(KEYS.done_channel)


def test_a_cancel_follows_the_same_rule(parts) -> None:  # type: ignore[no-untyped-def]
    store, a, _, heard = parts
    own = a.direct_channel()
    job = queued_job()
    store.create(replace(job, notify=own))
    assert store.terminate(job.id, "cancelled", GatewayError("stop", code="cancelled"))[0] == "ok"
    wait_for(lambda: heard.channels_of(job.id), 10, "the job's notice")
    assert heard.channels_of(job.id) == {own}


def test_watching_a_missing_job_creates_nothing(parts) -> None:  # type: ignore[no-untyped-def]
    store, _, _, _ = parts
    assert store.watch("job_nope") is False
    assert store.r.exists(KEYS.job("job_nope")) == 0


def test_a_job_without_a_creator_waiting_needs_no_watch(  # type: ignore[no-untyped-def]
    parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job from POST /v1/jobs names no channel: its notice goes to the fleet's channel
    anyway, so a wait for it costs no extra step; the creator's own wait needs none either."""
    store, a, b, _ = parts
    monkeypatch.setattr(waiter_module, "RECHECK_S", 60.0)
    for job, hub in ((queued_job(), b), (queued_job(notify=a.direct_channel()), a)):
        store.create(job)
        worker = finish_soon(store, job.id)
        started = time.monotonic()
        got = hub.wait(job.id, 30, lambda: store.get(job.id), job.notify)  # noqa: B023
        worker.join()
        assert got is not None and got.status == "succeeded"
        assert time.monotonic() - started < 15  # woken by the notice (the re-read is 60 s)
        assert store.r.hget(KEYS.job(job.id), "watched") is None

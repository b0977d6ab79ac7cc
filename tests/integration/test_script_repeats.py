"""A step whose reply is lost runs twice: redis-py sends it again on a new connection (its
``retry``, on every client ``make_redis`` builds). Driven through a proxy that lets a chosen
script call reach Redis, then closes the connection before its reply (tests/support/tcp_proxy.py),
each store's real call must come out as if it ran once: the same state and the same answer."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from gateway_api import budget
from gateway_api.accept import accept
from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from gateway_api.submission import Respond, Submission
from gateway_cli.embedded_redis import EmbeddedRedis
from shared.autopipeline import AutoPipelineRedis
from shared.batch.batch_store import FINALIZING, IN_PROGRESS, VALIDATING, BatchStore
from shared.batch.file_store import FileStore
from shared.chat_request import parse_chat
from shared.config.settings import BreakerSettings, ProviderSettings
from shared.config.store import ConfigStore
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.spend.budget import BudgetHold
from shared.state.breaker import Breakers
from shared.state.idempotency import IdempotencyKeys
from shared.state.job_record import Job, new_job_id
from shared.state.jobs import JobStore
from shared.state.quota import ProviderQuotas
from shared.state.ratelimit import KeyLimits, RateLimiter
from shared.webhooks import WebhookStore, delivery_id, event_id
from tests.support.api import make_app
from tests.support.clients import sha
from tests.support.jobs import queued_job
from tests.support.stack import wait_for
from tests.support.tcp_proxy import LossyProxy, evalsha

KEYS = Keys("gw")
DB = 15  # the redis_db fixture's database
LIMIT, HOLD = 1_000_000, 30_000


@pytest.fixture
def proxy(redis_server: EmbeddedRedis, redis_db: str) -> Iterator[LossyProxy]:
    p = LossyProxy(redis_server.port)
    yield p
    p.stop()


@pytest.fixture
def direct(redis_db: str) -> Iterator[redis.Redis]:
    """The same database, not through the proxy: to look at what the steps left."""
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    yield client
    client.close()


def lose_reply(proxy: LossyProxy, direct: redis.Redis, script: Any, times: int = 1) -> None:
    """The next ``times`` calls of ``script`` run, and their replies are lost. The script is
    loaded first: a NOSCRIPT answer would be the lost reply, and nothing would run twice."""
    direct.script_load(script.script)
    proxy.drop_reply(evalsha(script), times)


def lossy(proxy: LossyProxy, autopipeline: bool = False, decode: bool = True) -> redis.Redis:
    return make_redis(proxy.url(DB), autopipeline=autopipeline, decode=decode)


# -- create.lua ----------------------------------------------------------------------------
@pytest.mark.parametrize("autopipeline", [False, True], ids=["plain", "autopipeline"])
def test_a_created_job_whose_reply_was_lost_holds_its_budget_once(
    proxy: LossyProxy, direct: redis.Redis, autopipeline: bool
) -> None:
    store = JobStore(lossy(proxy, autopipeline), KEYS, 3600)
    lose_reply(proxy, direct, store._create)
    job = replace(queued_job(door="chat"), owner="k")
    created = store.create(job, publish=("normal", b"task"), hold=BudgetHold(LIMIT, "day", HOLD))
    assert proxy.losses == 1  # it ran, its reply was lost, and redis-py sent it again
    assert int(direct.hget(KEYS.budget("k"), "reserved") or 0) == HOLD
    assert direct.hget(KEYS.job(job.id), "budget") == f"{KEYS.budget('k')}\n{HOLD}"
    assert created.outcome == "ok" and created.left == LIMIT - HOLD
    assert direct.lrange(KEYS.broker_queue("normal"), 0, -1) == ["task"]  # published once
    assert direct.hget(KEYS.stats, "jobs_submitted") == "1"
    assert direct.hget(KEYS.stats, "door_jobs_chat") == "1"  # its door's count too


def test_jobs_in_a_shared_round_trip_whose_reply_was_lost_are_created_once(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    client = lossy(proxy, autopipeline=True)
    assert isinstance(client, AutoPipelineRedis)
    store = JobStore(client, KEYS, 3600)
    lose_reply(proxy, direct, store._create)
    # A caller's command holds the round trip in flight; two creates queue up behind it and
    # then go out together, as one pipeline, which redis-py sends again whole.
    blocker = threading.Thread(target=lambda: client.blpop(["gate"], timeout=30))
    blocker.start()
    wait_for(lambda: _blocked(direct), 10, "the BLPOP in flight")
    jobs = [replace(queued_job(), owner="k") for _ in range(2)]
    outcomes: dict[str, str] = {}

    def create(job: Job) -> None:
        outcomes[job.id] = store.create(job, hold=BudgetHold(LIMIT, "day", HOLD)).outcome

    creators = [threading.Thread(target=create, args=(j,)) for j in jobs]
    for t in creators:
        t.start()
    wait_for(lambda: len(client._queue) == 2, 10, "both creates queued")
    direct.rpush("gate", "go")
    for t in [blocker, *creators]:
        t.join(30)
    assert proxy.losses == 1
    assert outcomes == {j.id: "ok" for j in jobs}
    assert int(direct.hget(KEYS.budget("k"), "reserved") or 0) == 2 * HOLD
    assert direct.zcard(KEYS.pending("normal")) == 2
    assert direct.hget(KEYS.stats, "jobs_submitted") == "2"


def _blocked(direct: redis.Redis) -> bool:
    return any(c.get("cmd") == "blpop" for c in direct.client_list())


def test_a_job_held_for_fair_share_is_answered_held_again(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    store = JobStore(lossy(proxy), KEYS, 3600)
    first = replace(queued_job(), owner="k")
    assert store.create(first, fair_room=1).outcome == "ok"  # fills the key's window of 1
    lose_reply(proxy, direct, store._create)
    second = replace(queued_job(), owner="k")
    assert store.create(second, fair_room=1).outcome == "held"  # nothing to publish
    assert proxy.losses == 1
    assert direct.lrange(KEYS.fair_backlog("normal", "k"), 0, -1) == [second.id]
    assert direct.get(KEYS.fair_held("normal")) == "1"


# -- file_reserve.lua ----------------------------------------------------------------------
@pytest.mark.parametrize("autopipeline", [False, True], ids=["plain", "autopipeline"])
def test_an_upload_whose_reservation_reply_was_lost_is_counted_once(
    proxy: LossyProxy, direct: redis.Redis, autopipeline: bool
) -> None:
    store = FileStore(lossy(proxy, autopipeline, decode=False), KEYS, 50_000)
    lose_reply(proxy, direct, store._reserve)
    body = b'{"custom_id": "a"}\n'
    stored = store.put("o", "in.jsonl", "batch", io.BytesIO(body), len(body))
    assert proxy.losses == 1
    assert direct.hgetall(KEYS.files_usage) == {
        "#total": str(len(body)),
        stored.id: str(len(body)),
        f"{stored.id}:owner": "o",
        "#owner:o": str(len(body)),
    }


@pytest.mark.parametrize("autopipeline", [False, True], ids=["plain", "autopipeline"])
def test_an_upload_whose_chunk_write_reply_was_lost_stores_its_content_once(
    proxy: LossyProxy, direct: redis.Redis, autopipeline: bool
) -> None:
    store = FileStore(lossy(proxy, autopipeline, decode=False), KEYS, 50_000)
    warm = b'{"custom_id": "w"}\n'  # loads the store's scripts: a NOSCRIPT reply is not lost
    store.put("o", "warm.jsonl", "batch", io.BytesIO(warm), len(warm))
    body = b'{"custom_id": "chunk-write-marker"}\n'
    proxy.drop_reply(b"chunk-write-marker")  # only the chunks carry it
    stored = store.put("o", "in.jsonl", "batch", io.BytesIO(body), len(body))
    assert proxy.losses == 1
    assert b"".join(store.content(stored.id)) == body


# -- Idempotency-Key -----------------------------------------------------------------------
def test_a_claim_whose_reply_was_lost_is_still_this_requests(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    keys = IdempotencyKeys(lossy(proxy), KEYS, 3600)
    lose_reply(proxy, direct, keys._claim)
    claim = keys.claim("k", "key-1", "digest", "job_1")
    assert proxy.losses == 1
    assert claim.first and claim.job_id == "job_1"


def test_a_take_over_whose_reply_was_lost_is_still_this_requests(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    IdempotencyKeys(direct, KEYS, 3600).claim("k", "key-1", "digest", "job_gone")
    keys = IdempotencyKeys(lossy(proxy), KEYS, 3600)
    stale = keys.claim("k", "key-1", "digest", "job_2")
    assert not stale.first and stale.job_id == "job_gone"
    lose_reply(proxy, direct, keys._take_over)
    taken = keys.take_over("k", "key-1", stale, "job_2")
    assert proxy.losses == 1
    assert taken.first and taken.job_id == "job_2"


def _admit_twice(proxy: LossyProxy, direct: redis.Redis) -> tuple[list[str], Any, int]:
    """A request whose create fails with Redis unreachable, then the client's retry with the
    same Idempotency-Key, both through ``accept`` on an API whose Redis connection is the lossy
    proxy. Returns the job ids created, the retry's answer and the budget a job holds."""
    auth = {"keys": [{"id": "k", "key_sha256": sha("sk-k"), "budget": {"usd": 1}}]}
    price = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
    models = {"m": [{"provider": "p", "model": "x", "price": price}]}
    app = make_app(client=lossy(proxy), auth=auth, models=models)
    services: Services = app.extensions["gateway"]
    assert services.keys.job("j") == KEYS.job("j")
    principal = Principal("k", services.settings.key("k"))
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    sub = Submission(
        kind="chat",
        door="chat",
        request=parse_chat(services.settings, body),
        route="/v1/chat/completions",
        body=body,
        priority="normal",
        deadline_s=60.0,
        respond=Respond.ASYNC,
        idempotency_key="abc",
    )
    hold = budget.hold_for(services, principal, sub.request)
    assert hold is not None
    jobs = services.stores.jobs
    made: list[str] = []
    create = jobs.create

    def recorded(job: Job, *args: Any, **kwargs: Any) -> Any:
        made.append(job.id)
        return create(job, *args, **kwargs)

    jobs.create = recorded  # type: ignore[method-assign]
    with pytest.raises(redis.ConnectionError):
        accept(services, principal, sub, Notes(), new_job_id())
    again = accept(services, principal, sub, Notes(), new_job_id())
    return made, again, hold.micro


def test_a_job_created_unanswered_keeps_its_idempotency_key_for_the_retry(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    store = JobStore(direct, KEYS, 3600)
    lose_reply(proxy, direct, store._create, times=2)  # the first run's and redis-py's retry's
    made, again, hold = _admit_twice(proxy, direct)
    assert proxy.losses == 2
    assert len(made) == 1  # the client's retry got the job that runs, not a second one
    assert again.replayed and again.job.id == made[0]
    assert int(direct.hget(KEYS.budget("k"), "reserved") or 0) == hold


def test_a_create_that_never_reached_redis_gives_the_key_back(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    store = JobStore(direct, KEYS, 3600)
    direct.script_load(store._create.script)
    proxy.cut(evalsha(store._create), times=2)
    made, again, _ = _admit_twice(proxy, direct)
    assert proxy.losses == 2
    assert len(made) == 2 and not again.replayed and again.job.id == made[1]
    assert not direct.exists(KEYS.job(made[0]))


# -- the other guarded scripts ---------------------------------------------------------------
def test_a_config_write_whose_reply_was_lost_is_not_a_conflict(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    store = ConfigStore(lossy(proxy), KEYS)
    lose_reply(proxy, direct, store._put)
    assert store.put({"queue": {"max_depth": 10}}, 0, "admin", "deeper") == 1
    assert proxy.losses == 1
    assert store.current_number() == 1 and len(store.versions()) == 1


def test_a_batch_end_whose_reply_was_lost_says_it_moved(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    # A finalize told "not moved" deletes the output file it wrote, which the batch now names.
    store = BatchStore(lossy(proxy), KEYS, 3600)
    batch = store.create("o", "file-x", "/v1/chat/completions", "24h", 86400, None)
    assert store.move(batch, (VALIDATING,), IN_PROGRESS, total=1)
    assert store.move(batch, (IN_PROGRESS,), FINALIZING)
    lose_reply(proxy, direct, store._move)
    assert store.move(batch, (FINALIZING,), "completed", output_file_id="file-out")
    assert proxy.losses == 1
    assert direct.hget(KEYS.batch(batch.id), "output_file_id") == "file-out"
    assert direct.lrange(KEYS.webhook_outbox, 0, -1) == [f"batch:{batch.id}"]


def test_a_provider_slot_whose_grant_was_lost_is_still_granted(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    quotas = ProviderQuotas(lossy(proxy), KEYS)
    lose_reply(proxy, direct, quotas._acquire)
    provider = ProviderSettings("p", "mock", "http://p", max_concurrent=1)
    grant = quotas.acquire(provider, "job_1:token")
    assert proxy.losses == 1
    assert grant.allowed
    assert direct.zrange(KEYS.quota("p", "concurrent"), 0, -1) == ["job_1:token"]


def test_a_key_slot_whose_admission_was_lost_is_still_admitted(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    limiter = RateLimiter(lossy(proxy), KEYS)
    lose_reply(proxy, direct, limiter._check)
    verdict = limiter.check("k", KeyLimits(None, None, 1), job_id="job_1")
    assert proxy.losses == 1
    assert verdict.allowed and verdict.concurrent == 1


def test_a_breaker_probe_whose_grant_was_lost_is_still_the_probe(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    breakers = Breakers(lossy(proxy), KEYS, BreakerSettings(probe_timeout_s=30))
    direct.hset(KEYS.breaker("p"), mapping={"state": "open", "open_until": time.time() - 1})
    lose_reply(proxy, direct, breakers._allow)
    admission = breakers.allow("p", "p")
    assert proxy.losses == 1
    assert admission.allowed and admission.probe_token
    assert direct.get(KEYS.breaker_probe("p")) == admission.probe_token


def test_a_webhook_attempt_whose_reply_was_lost_is_recorded_once(
    proxy: LossyProxy, direct: redis.Redis
) -> None:
    WebhookStore(direct, KEYS).emit("o", "job:job_1", "response.completed", "job_1", ["u"], 3600)
    delivery = delivery_id(event_id("job:job_1"), "u")
    store = WebhookStore(lossy(proxy), KEYS)
    lose_reply(proxy, direct, store._record)
    attempt = {"at": 1700000000, "status_code": 500, "error": None, "duration_ms": 12.5}
    assert store.record(delivery, attempt, "retry", time.time() + 60, 3600) == 1
    assert proxy.losses == 1
    got = store.get("o", delivery)
    assert got is not None and len(got.attempts) == 1

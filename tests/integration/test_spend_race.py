"""The spend scripts raced from several processes against a real Redis: create.lua admits
exactly what a budget holds, job_ended.lua gives each reservation back once, and charge.lua
counts a delivery's call once however many times it is sent."""

from __future__ import annotations

import multiprocessing
from dataclasses import replace
from typing import Any

import redis

from shared.errors import ProviderFailed
from shared.keys import Keys
from shared.spend.budget import BudgetHold
from shared.spend.cost import Usage
from shared.spend.usage import Charge, SpendStore
from shared.state.job_record import FAILED
from shared.state.jobs import JobStore
from tests.support.jobs import queued_job

KEYS = Keys("gw")
LIMIT, HOLD = 1_000_000, 30_000  # room for 33 reservations at once


def _create_many(url: str, n: int, out: Any) -> None:
    r = redis.Redis.from_url(url, decode_responses=True)
    store = JobStore(r, KEYS, 3600)
    made = []
    for _ in range(n):
        job = replace(queued_job(), owner="k")
        created = store.create(job, hold=BudgetHold(LIMIT, "day", HOLD))
        if created.outcome == "ok":
            made.append(job.id)
    out.put(made)


def _charge_many(url: str, job_id: str, tokens: list[str], out: Any) -> None:
    r = redis.Redis.from_url(url, decode_responses=True)
    spend = SpendStore(r, KEYS)
    charge = Charge("mock", "m", Usage(3, 4), 777)
    out.put(sum(int(spend.charge(job_id, t, "k", charge, "day")) for t in tokens * 20))


def _run(target: Any, jobs: list[tuple[Any, ...]]) -> list[Any]:
    out: Any = multiprocessing.get_context("spawn").Queue()
    procs = [
        multiprocessing.get_context("spawn").Process(target=target, args=(*a, out)) for a in jobs
    ]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    return got


def test_reservations_race_and_each_is_given_back_once(redis_db: str) -> None:
    made = [j for batch in _run(_create_many, [(redis_db, 25)] * 4) for j in batch]
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    assert len(made) == LIMIT // HOLD  # 100 tried at once, exactly 33 admitted
    assert int(r.hget(KEYS.budget("k"), "reserved") or 0) == len(made) * HOLD
    store = JobStore(r, KEYS, 3600)
    err = ProviderFailed("gone")
    for job_id in made:
        store.terminate(job_id, FAILED, err)
        store.terminate(job_id, FAILED, err)  # a second end changes nothing
    assert int(r.hget(KEYS.budget("k"), "reserved") or 0) == 0
    assert int(r.hget(KEYS.budget("k"), "spent") or 0) == 0  # nothing was billed


def test_a_delivery_is_charged_once_whatever_the_race(redis_db: str) -> None:
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    r.hset(KEYS.job("job_race"), mapping={"status": "running"})
    tokens = [f"delivery-{i}" for i in range(5)]
    counted = sum(_run(_charge_many, [(redis_db, "job_race", tokens)] * 4))
    # Each of 5 deliveries' charge sent 20 times from each of 4 processes: counted once each.
    assert counted == len(tokens)
    assert int(r.hget(KEYS.job("job_race"), "cost_micro") or 0) == counted * 777
    assert int(r.hget(KEYS.budget("k"), "spent") or 0) == counted * 777


def test_a_charge_moves_its_cost_from_the_reservation_so_nothing_counts_twice(
    redis_db: str,
) -> None:
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    store = JobStore(r, KEYS, 3600)
    job = replace(queued_job(), owner="k")
    assert store.create(job, hold=BudgetHold(LIMIT, "day", HOLD)).outcome == "ok"
    tokens = [f"delivery-{i}" for i in range(50)]  # 50 x 777 > HOLD: the hold runs out
    counted = sum(_run(_charge_many, [(redis_db, job.id, tokens)] * 4))
    assert counted == len(tokens)
    budget = r.hgetall(KEYS.budget("k"))
    assert int(budget["spent"]) == counted * 777
    # The hold was spent, not kept beside what was spent: spent + reserved is the real cost.
    assert int(budget.get("reserved") or 0) == 0
    assert r.hget(KEYS.job(job.id), "budget") is None  # nothing left to give back
    store.terminate(job.id, FAILED, ProviderFailed("gone"))
    assert int(r.hget(KEYS.budget("k"), "reserved") or 0) == 0

    # A charge under the hold moves exactly its cost; the end gives back the rest.
    second = replace(queued_job(), owner="k")
    assert store.create(second, hold=BudgetHold(LIMIT, "day", HOLD)).outcome == "ok"
    _run(_charge_many, [(redis_db, second.id, ["one"])])
    assert int(r.hget(KEYS.budget("k"), "reserved") or 0) == HOLD - 777
    store.terminate(second.id, FAILED, ProviderFailed("gone"))
    budget = r.hgetall(KEYS.budget("k"))
    assert int(budget.get("reserved") or 0) == 0
    assert int(budget["spent"]) == (counted + 1) * 777

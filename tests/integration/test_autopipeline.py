"""Auto-pipelining against a real Redis: concurrent callers share round trips, and each gets
its own result and its own error."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from shared.autopipeline import AutoPipelineRedis
from shared.redis_client import make_redis


@pytest.fixture
def client(redis_db: str) -> AutoPipelineRedis:
    c = make_redis(redis_db, autopipeline=True)
    assert isinstance(c, AutoPipelineRedis)
    return c


def test_concurrent_callers_get_their_own_results_in_fewer_round_trips(
    client: AutoPipelineRedis,
) -> None:
    n, results, errors = 200, {}, []
    start = threading.Barrier(n)

    def caller(i: int) -> None:
        try:
            start.wait()
            client.set(f"k{i}", i)
            results[i] = (client.incr(f"k{i}"), client.get(f"k{i}"))
        except Exception as exc:  # noqa: BLE001 (collected, asserted below)
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == {i: (i + 1, str(i + 1)) for i in range(n)}
    # 600 commands; batched whenever one was in flight as others came.
    assert 0 < client.batches < 600


def test_one_callers_error_is_its_own(client: AutoPipelineRedis) -> None:
    client.set("text", "not a number")
    outcomes: dict[str, Any] = {}
    gate = threading.Barrier(20)

    def good(i: int) -> None:
        gate.wait()
        outcomes[f"g{i}"] = client.incr(f"n{i}")

    def bad() -> None:
        gate.wait()
        try:
            client.incr("text")
        except redis.ResponseError as exc:
            outcomes["bad"] = exc

    threads = [threading.Thread(target=good, args=(i,)) for i in range(19)]
    threads.append(threading.Thread(target=bad))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcomes["bad"], redis.ResponseError)
    assert all(outcomes[f"g{i}"] == 1 for i in range(19))


def test_scripts_load_themselves_inside_a_batch(client: AutoPipelineRedis) -> None:
    script = client.register_script("return tonumber(ARGV[1]) * 2")
    client.script_flush()
    got: list[int] = []
    gate = threading.Barrier(30)

    def run(i: int) -> None:
        gate.wait()
        got.append(int(script(args=[i])))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == [2 * i for i in range(30)]


def test_an_idle_caller_sends_at_once(client: AutoPipelineRedis) -> None:
    client.set("a", "1")
    assert client.get("a") == "1"
    assert client.batches == 0  # nothing was queued behind another command


def test_a_lost_connection_reaches_every_waiting_caller() -> None:
    dead = make_redis("redis://127.0.0.1:1/0", autopipeline=True)
    seen: list[BaseException] = []
    gate = threading.Barrier(10)

    def caller() -> None:
        gate.wait()
        try:
            dead.get("x")
        except redis.ConnectionError as exc:
            seen.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == 10


def test_a_command_from_gevents_hub_is_sent_at_once(client: AutoPipelineRedis) -> None:
    """A signal handler runs in gevent's hub, which cannot wait for a queued command: it
    sends its own even while another is in flight."""
    import gevent

    client.set("h", "1")
    client._in_flight = True  # another caller's command is on the wire
    got: list[Any] = []
    try:
        gevent.get_hub().loop.run_callback(lambda: got.append(client.get("h")))
        gevent.sleep(0.05)  # let the hub run the callback
    finally:
        client._in_flight = False
    assert got == ["1"]


def test_callers_own_pipelines_join_the_shared_round_trip_in_order(
    client: AutoPipelineRedis,
) -> None:
    client.set("text", "x")
    got: dict[int, list[Any]] = {}
    gate = threading.Barrier(40)

    def caller(i: int) -> None:
        gate.wait()
        pipe = client.pipeline(transaction=False)
        pipe.set(f"p{i}", i).incr(f"p{i}").incr("text").get(f"p{i}")
        got[i] = pipe.execute(raise_on_error=False)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(40):
        ok, incr, err, value = got[i]
        assert (ok, incr, value) == (True, i + 1, str(i + 1))
        assert isinstance(err, redis.ResponseError)  # its own error, in its place
    with pytest.raises(redis.ResponseError):  # raise_on_error as redis-py does
        client.pipeline(transaction=False).incr("text").execute()
    # A transaction keeps its own connection and semantics.
    tx = client.pipeline(transaction=True)
    assert tx.set("t", 1).incr("t").execute() == [True, 2]

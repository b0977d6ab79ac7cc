"""The batch duty's steps (``workers/batches.py``) run in this process against a real
redis-server, with no worker running the line jobs: every key's batches get their turn, a key's
batches and their lines are bounded, a cancel ends every line job however many blank lines the
input has, and finalize writes its files a chunk at a time and gives up when they never fit."""

from __future__ import annotations

import io
import json
import multiprocessing
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from shared.batch.batch_store import (
    CANCELLED,
    CANCELLING,
    IN_PROGRESS,
    VALIDATING,
    Batch,
    BatchStore,
    line_job_id,
)
from shared.config.loader import load_config
from shared.errors import GatewayError
from tests.support.api import make_app
from tests.support.clients import CLIENT_KEY, OTHER_KEY
from tests.support.stack import KEYS, wait_for
from workers import batch_output
from workers import batches as duty
from workers.context import WorkerContext

A, B = "team-a", "team-b"
ROUNDS = 20  # duty rounds, more than the finalize attempts a batch may take
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
AUTH_A = {"Authorization": f"Bearer {CLIENT_KEY}"}
AUTH_B = {"Authorization": f"Bearer {OTHER_KEY}"}


def _doc(url: str, **sections: Any) -> dict[str, Any]:
    return {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "redis": {"url": url, "prefix": KEYS.prefix},
        **sections,
    }


@pytest.fixture
def make_ctx(redis_db: str) -> Iterator[Callable[..., WorkerContext]]:
    """``make_ctx(**config sections)``: a worker's context on the test's empty database."""
    made: list[WorkerContext] = []

    def make(**sections: Any) -> WorkerContext:
        ctx = WorkerContext.build(
            load_config(env={"GATEWAY_CONFIG": json.dumps(_doc(redis_db, **sections))})
        )
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.redis.close()
        ctx.raw.close()


def _line(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": BODY}


def _jsonl(lines: list[Any]) -> bytes:
    return b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)


def _upload(ctx: WorkerContext, owner: str, data: bytes) -> str:
    return ctx.stores.files.put(owner, "in.jsonl", "batch", io.BytesIO(data), len(data)).id


def _batch(ctx: WorkerContext, owner: str, file_id: str) -> Batch:
    return ctx.stores.batches.create(owner, file_id, "/v1/chat/completions", "24h", 86400, None)


def _status(ctx: WorkerContext, batch_id: str) -> str:
    got = ctx.stores.batches.get(batch_id)
    assert got is not None
    return got.status


def _fresh(ctx: WorkerContext, batch_id: str) -> Batch:
    got = ctx.stores.batches.get(batch_id)
    assert got is not None
    return got


def _steps_until(ctx: WorkerContext, done: Callable[[], bool], most: int = 50) -> None:
    """Duty rounds until ``done`` (each round does work: no time passes between them)."""
    for _ in range(most):
        if done():
            return
        duty.step_batches(ctx)
    assert done(), "the batch duty did not get there"


# -- turns across keys, a bound per key, room left at batch priority ------------------------------
def test_keys_with_a_thousand_batches_between_them_do_not_hold_another_keys_batch_back(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx()
    last = 0
    for t in range(10):  # ten keys, each at its bound of 100 batches not yet ended
        owner = f"tenant-{t}"
        mine = _upload(ctx, owner, _jsonl([_line("a")]))
        last = max(last, *(_batch(ctx, owner, mine).created_at for _ in range(100)))
    # B's batch is the newest by its creation time (whole seconds), not only by a tie's order.
    wait_for(lambda: time.time() >= last + 1, 5, "the next second")
    theirs = _batch(ctx, B, _upload(ctx, B, _jsonl([_line("b")])))
    duty.step_batches(ctx)  # one round
    assert _status(ctx, theirs.id) == IN_PROGRESS  # validated in the round's first pass


def _create_many(url: str, bound: int, n: int, out: Any) -> None:
    from shared.batch.batch_store import TooManyActive

    store = BatchStore(redis.Redis.from_url(url, decode_responses=True), KEYS, 3600)
    made = refused = 0
    for _ in range(n):
        try:
            store.create(A, "file-x", "/v1/chat/completions", "24h", 86400, None, bound)
            made += 1
        except TooManyActive:
            refused += 1
    out.put((made, refused))


def test_the_bound_on_a_keys_active_batches_holds_across_racing_api_processes(
    redis_db: str,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    out: Any = spawn.Queue()
    procs = [spawn.Process(target=_create_many, args=(redis_db, 7, 10, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(made for made, _ in results) == 7
    assert sum(refused for _, refused in results) == 33
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    assert r.zcard(KEYS.owner_active_batches(A)) == 7
    assert r.zrange(KEYS.batch_turns, 0, -1) == [A]


def _api(redis_db: str, **sections: Any) -> tuple[FlaskClient, redis.Redis]:
    client = redis.Redis.from_url(redis_db, decode_responses=True)
    app = make_app(client=client, redis={"url": redis_db, "prefix": KEYS.prefix}, **sections)
    return app.test_client(), client


def _file(api: FlaskClient, auth: dict[str, str], data: bytes) -> Any:
    return api.post(
        "/v1/files",
        headers=auth,
        data={"purpose": "batch", "file": (io.BytesIO(data), "in.jsonl")},
        content_type="multipart/form-data",
    )


def _create(api: FlaskClient, auth: dict[str, str], file_id: str) -> Any:
    return api.post(
        "/v1/batches",
        headers=auth,
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )


def test_one_more_active_batch_than_the_key_may_have_is_refused_with_429(
    redis_db: str,
) -> None:
    api, client = _api(redis_db, batches={"max_active_per_key": 2})
    mine = _file(api, AUTH_A, _jsonl([_line("a")])).get_json()["id"]
    first, second = (_create(api, AUTH_A, mine).get_json() for _ in range(2))
    refused = _create(api, AUTH_A, mine)
    assert refused.status_code == 429
    err = refused.get_json()["error"]
    assert err["code"] == "too_many_active_batches" and err["type"] == "rate_limit_error"
    assert "batches.max_active_per_key is 2" in err["message"]
    assert refused.headers["x-should-retry"] == "false"
    theirs = _file(api, AUTH_B, _jsonl([_line("b")])).get_json()["id"]
    assert _create(api, AUTH_B, theirs).status_code == 200  # another key's own bound
    assert api.post(f"/v1/batches/{first['id']}/cancel", headers=AUTH_A).status_code == 200
    assert _create(api, AUTH_A, mine).status_code == 429  # cancelling has not ended yet
    store = BatchStore(client, KEYS, 3600)
    ended = store.get(second["id"])
    assert ended is not None and store.move(ended, (VALIDATING,), "failed")
    assert _create(api, AUTH_A, mine).status_code == 200  # room once one has ended
    client.close()


def test_batch_lines_leave_room_at_batch_priority_for_another_keys_api_jobs(
    redis_db: str, make_ctx: Callable[..., WorkerContext]
) -> None:
    queue = {"max_depth": 20}
    ctx = make_ctx(queue=queue, batches={"expand_ahead": 100})
    big = _batch(ctx, A, _upload(ctx, A, _jsonl([_line(f"a{i}") for i in range(60)])))
    _steps_until(ctx, lambda: _fresh(ctx, big.id).expanded > 0)
    duty.step_batches(ctx)  # nothing more fits however often it is stepped
    queued = ctx.redis.zcard(KEYS.pending("batch")) + int(
        ctx.redis.get(KEYS.fair_held("batch")) or 0
    )
    assert 0 < queued <= 10  # half of queue.max_depth
    api, client = _api(redis_db, queue=queue)
    job = api.post("/v1/jobs", headers=AUTH_B, json={"request": BODY, "priority": "batch"})
    assert job.status_code == 202, job.get_json()
    client.close()


def test_one_keys_batches_together_hold_at_most_expand_ahead_lines_in_its_backlog(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx(queue={"fair_window": 1}, batches={"expand_ahead": 5})
    data = _jsonl([_line(f"a{i}") for i in range(20)])
    batches = [_batch(ctx, A, _upload(ctx, A, data)) for _ in range(3)]
    _steps_until(ctx, lambda: any(_fresh(ctx, b.id).expanded for b in batches))
    for _ in range(3):  # every batch has had its turn to expand
        duty.step_batches(ctx)
    assert 0 < ctx.redis.llen(KEYS.fair_backlog("batch", A)) <= 5


# -- cancel ends every line job; nothing is counted after the end ---------------------------------
def test_a_cancel_ends_every_line_job_when_the_input_has_blank_lines(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx()
    api, client = _api(ctx.settings.redis_url)
    lines: list[Any] = []
    for i in range(6):
        lines += [_line(f"c{i}"), b"", b"   "]  # two blank lines after each request
    b = _batch(ctx, A, _upload(ctx, A, _jsonl(lines)))
    _steps_until(ctx, lambda: _fresh(ctx, b.id).expanded == 6)
    jobs = [line_job_id(b.id, 1 + 3 * i) for i in range(6)]
    assert all(ctx.redis.hget(KEYS.job(j), "status") == "queued" for j in jobs)
    cancel = api.post(f"/v1/batches/{b.id}/cancel", headers=AUTH_A)
    assert cancel.get_json()["status"] == CANCELLING
    client.close()
    _steps_until(ctx, lambda: _status(ctx, b.id) == CANCELLED)
    assert {ctx.redis.hget(KEYS.job(j), "status") for j in jobs} == {"cancelled"}
    ended = _fresh(ctx, b.id)
    assert (ended.completed, ended.failed, ended.ended) == (0, 0, 6)


def test_a_line_that_ends_after_its_batch_changes_no_count_and_leaves_no_list(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx()
    b = _batch(ctx, A, _upload(ctx, A, _jsonl([_line("x"), _line("y")])))
    _steps_until(ctx, lambda: _fresh(ctx, b.id).expanded == 2)
    # The batch has ended with a line still queued (as a cancel that missed it once did).
    ctx.redis.hset(KEYS.batch(b.id), "status", CANCELLED)
    before = ctx.redis.hgetall(KEYS.batch(b.id))
    outcome, _ = ctx.stores.jobs.terminate(
        line_job_id(b.id, 2), "cancelled", GatewayError("late", code="late")
    )
    assert outcome == "ok"
    assert ctx.redis.hgetall(KEYS.batch(b.id)) == before
    assert not ctx.redis.exists(KEYS.batch_results(b.id))


# -- files written a chunk at a time, within the key's bound, given up when they never fit
def _answered(ctx: WorkerContext, b: Batch, results: list[bytes], completed: int) -> None:
    """The batch as if its lines had all run and written ``results`` (its output lines)."""
    pipe = ctx.redis.pipeline(transaction=False)
    for start in range(0, len(results), 500):
        pipe.rpush(KEYS.batch_results(b.id), *results[start : start + 500])
    n = len(results)
    fields: dict[Any, Any] = {
        "expanded": n,
        "ended": n,
        "completed": completed,
        "failed": n - completed,
    }
    pipe.hset(KEYS.batch(b.id), mapping=fields)
    pipe.execute()


def _result(custom_id: str, status: int, size: int = 0) -> bytes:
    body: dict[str, Any] = {"object": "chat.completion", "pad": "x" * size}
    if status != 200:
        body = {"error": {"message": "refused", "pad": "x" * size}}
    line = {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": custom_id, "body": body},
        "error": None,
    }
    return json.dumps(line).encode()


def _validated(ctx: WorkerContext, n: int, owner: str = A) -> Batch:
    b = _batch(ctx, owner, _upload(ctx, owner, _jsonl([_line(f"r{i}") for i in range(n)])))
    duty.validate(ctx, b)
    return _fresh(ctx, b.id)


def _finalize_peak(ctx: WorkerContext, n: int) -> tuple[int, int]:
    """(the most memory Python held while a batch of ``n`` answered lines of about 4 KB was
    finalized, the output's size)."""
    b = _validated(ctx, n)
    results = [_result(f"r{i}", 200, 4000) for i in range(n)]
    size = sum(len(x) + 1 for x in results)
    _answered(ctx, b, results, n)
    del results
    tracemalloc.start()
    try:
        duty.step_batches(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    done = _fresh(ctx, b.id)
    assert done.status == "completed" and done.output_file_id and not done.error_file_id
    out = ctx.stores.files.get(A, done.output_file_id)
    assert out is not None and out.bytes == size
    return peak, size


def test_finalize_writes_the_output_a_chunk_at_a_time_never_whole_in_memory(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx()
    small, small_size = _finalize_peak(ctx, 3_000)  # about 12 MiB of output
    large, large_size = _finalize_peak(ctx, 9_000)  # three times that
    assert large_size > 2.9 * small_size
    # What a finalize holds does not grow with its output (whole, it would triple).
    assert large < 1.5 * small, f"{small} bytes held for {small_size}, {large} for {large_size}"


def test_files_that_never_fit_the_store_fail_the_batch_after_bounded_attempts(
    make_ctx: Callable[..., WorkerContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_output, "FINALIZE_BACKOFF_S", 0.0)  # tried each round
    ctx = make_ctx(files={"redis_max_bytes": 8_000})
    b = _validated(ctx, 3)
    # The output fits; the error file does not: the output written is given back too.
    _answered(ctx, b, [_result("r0", 200), _result("r1", 200), _result("r2", 500, 8000)], 2)
    for _ in range(ROUNDS):
        duty.step_batches(ctx)
    done = _fresh(ctx, b.id)
    assert done.status == "failed" and done.failed_at
    assert done.errors is not None and done.errors["data"][0]["code"] == "output_not_stored"
    assert "file store is full" in done.errors["data"][0]["message"]
    assert (done.completed, done.failed) == (2, 1)
    assert [f.id for f in ctx.stores.files.page(A, 10, None, True, None)[0]] == [b.input_file_id]
    assert not ctx.redis.exists(KEYS.batch_results(b.id))
    assert not ctx.redis.exists(KEYS.owner_active_batches(A))


def test_an_output_over_the_keys_file_bound_fails_the_batch_naming_the_bound(
    make_ctx: Callable[..., WorkerContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_output, "FINALIZE_BACKOFF_S", 0.0)
    ctx = make_ctx(files={"max_bytes_per_key": 3_000})
    b = _validated(ctx, 2)
    theirs = _validated(ctx, 2, owner=B)
    _answered(ctx, b, [_result("r0", 200, 2000), _result("r1", 200, 2000)], 2)
    _answered(ctx, theirs, [_result("r0", 200), _result("r1", 200)], 2)
    for _ in range(ROUNDS):
        duty.step_batches(ctx)
    done = _fresh(ctx, b.id)
    assert done.status == "failed" and done.errors is not None
    assert "files.max_bytes_per_key" in done.errors["data"][0]["message"]
    assert _fresh(ctx, theirs.id).status == "completed"  # another key's bound is its own


def test_an_upload_over_the_keys_file_bound_is_refused_with_413(redis_db: str) -> None:
    api, client = _api(redis_db, files={"max_bytes_per_key": 1000})
    data = _jsonl([_line("x" * 500)])[:600]
    first = _file(api, AUTH_A, data)
    assert first.status_code == 200
    refused = _file(api, AUTH_A, data)
    assert refused.status_code == 413
    err = refused.get_json()["error"]
    assert err["code"] == "files_quota_exceeded" and "files.max_bytes_per_key" in err["message"]
    assert _file(api, AUTH_B, data).status_code == 200  # another key's own bound
    api.delete(f"/v1/files/{first.get_json()['id']}", headers=AUTH_A)
    assert _file(api, AUTH_A, data).status_code == 200  # room again
    client.close()


# -- a budget's reservations hold however many batches of the key expand at once ------------------
HOLD, LIMIT = 1_000, 25_500  # room for 25 lines' reservations


def _budget_expander(url: str, batch_id: str, start: Any, out: Any) -> None:
    from shared.batch.batch_store import ExpandLine

    store = BatchStore(redis.Redis.from_url(url, decode_responses=True), KEYS, 3600)
    batch = store.get(batch_id)
    assert batch is not None
    lines = []
    for n in range(1, 21):
        job_id = line_job_id(batch_id, n)
        record = {"id": job_id, "owner": A, "status": "queued", "priority": "batch"}
        lines.append(ExpandLine(job_id, record, HOLD, f"{n * 10}:{n}", b'{"refused":1}'))
    start.wait(60)
    out.put(store.expand(batch, lines, "200:20", 3600, 10**6, 10**6, (LIMIT, "total")).taken)


def test_a_keys_budget_holds_across_its_batches_expanding_at_once(redis_db: str) -> None:
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    store = BatchStore(r, KEYS, 3600)
    ids = []
    for _ in range(4):
        b = store.create(A, "file-x", "/v1/chat/completions", "24h", 86400, None)
        assert store.move(b, (VALIDATING,), IN_PROGRESS, total=20)
        ids.append(b.id)
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(5), spawn.Queue()
    procs = [spawn.Process(target=_budget_expander, args=(redis_db, i, start, out)) for i in ids]
    for p in procs:
        p.start()
    start.wait(60)
    taken = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    # As many lines as the budget holds, whichever batches got them.
    assert r.llen(KEYS.fair_backlog("batch", A)) == 25
    assert int(r.hget(KEYS.budget(A), "reserved") or 0) == 25 * HOLD <= LIMIT
    # The rest would fit once those settle: they wait (nothing answered at once).
    assert sum(int(r.hget(KEYS.batch(i), "failed") or 0) for i in ids) == 0
    assert sum(taken) == 25


def test_a_line_of_a_key_with_a_budget_needs_a_bounded_cost(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    budget = {"usd": 1.0, "period": "total"}
    ctx = make_ctx(auth={"keys": [{"id": A, "key_sha256": "0" * 64, "budget": budget}]})
    bounded = {**_line("ok"), "body": {**BODY, "max_tokens": 5}}
    b = _batch(ctx, A, _upload(ctx, A, _jsonl([bounded, _line("open")])))
    duty.validate(ctx, b)
    failed = _fresh(ctx, b.id)
    assert failed.status == "failed" and failed.errors is not None
    [error] = failed.errors["data"]
    assert (error["line"], error["param"]) == (2, "body.max_tokens")


# -- the worklist of gateways from before the per-key turns ---------------------------------------
def test_batches_listed_the_old_way_join_the_turns_and_gone_ones_leave(
    make_ctx: Callable[..., WorkerContext],
) -> None:
    ctx = make_ctx()
    r = ctx.redis
    data = _jsonl([_line("a")])
    old, ended = _batch(ctx, A, _upload(ctx, A, data)), _batch(ctx, B, _upload(ctx, B, data))
    assert ctx.stores.batches.move(ended, (VALIDATING,), "failed")
    for b in (old, ended):  # listed only where an earlier gateway listed it
        r.zrem(KEYS.batches_active, b.id)
        r.zrem(KEYS.owner_active_batches(b.owner), b.id)
        r.zadd(KEYS.batches_active_before_turns, {b.id: b.created_at})
    r.zrem(KEYS.batch_turns, A)
    gone = _batch(ctx, B, _upload(ctx, B, data))
    r.delete(KEYS.batch(gone.id))  # a record lost (deleted by hand)
    duty.step_batches(ctx)
    assert _status(ctx, old.id) == IN_PROGRESS  # adopted and stepped in the same round
    assert not r.exists(KEYS.batches_active_before_turns)
    assert r.zrange(KEYS.batches_active, 0, -1) == [old.id]
    assert r.zrange(KEYS.batch_turns, 0, -1) == [A]
    assert not r.exists(KEYS.owner_active_batches(B))

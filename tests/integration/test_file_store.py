"""The file store's Lua steps against a real redis-server, raced across processes."""

from __future__ import annotations

import io
import multiprocessing
import time
from typing import Any

import pytest
import redis

from shared.batch import file_store as files_module
from shared.batch.file_store import FileStore, StoreFull, TooManyLines
from shared.keys import Keys

KEYS = Keys("gw")
BOUND = 50_000
KEY_BOUND = 20_000  # about 20 of the 45 uploads of one key below


def _store(url: str, bound: int = BOUND) -> FileStore:
    return FileStore(redis.Redis.from_url(url), KEYS, bound)


def _uploader(url: str, n: int, out: Any) -> None:
    store = _store(url)
    kept, refused = [], 0
    for i in range(n):
        body = b"z" * (1000 + i % 7) + b"\n"
        try:
            kept.append((store.put("o", "f", "batch", io.BytesIO(body), len(body)).id, len(body)))
        except StoreFull:
            refused += 1
    out.put((kept, refused))


def test_the_bound_holds_across_racing_uploads(redis_db: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue()
    procs = [ctx.Process(target=_uploader, args=(redis_db, 30, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    kept = [k for r in results for k in r[0]]
    refused = sum(r[1] for r in results)
    assert refused > 0  # 120 uploads of ~1 KB against 50 KB: the bound was reached
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    total = int(r.hget(KEYS.files_usage, "#total") or 0)
    assert total == sum(size for _, size in kept) <= BOUND
    assert r.zcard(KEYS.owner_files("o")) == len(kept)
    assert r.zcard(KEYS.files_uploading) == 0


def _key_uploader(url: str, owner: str, n: int, out: Any) -> None:
    from shared.batch.file_store import KeyFull

    store = FileStore(redis.Redis.from_url(url), KEYS, 10**9, key_bound_bytes=KEY_BOUND)
    kept, refused = [], 0
    for i in range(n):
        body = b"k" * (1000 + i % 5) + b"\n"
        try:
            store.put(owner, "f", "batch", io.BytesIO(body), len(body))
            kept.append(len(body))
        except KeyFull:
            refused += 1
    out.put((owner, sum(kept), refused))


def test_a_keys_bound_holds_across_racing_uploads_and_leaves_other_keys_alone(
    redis_db: str,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue()
    owners = ["o", "o", "o", "other"]
    procs = [ctx.Process(target=_key_uploader, args=(redis_db, o, 15, out)) for o in owners]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    mine = sum(kept for owner, kept, _ in results if owner == "o")
    assert sum(refused for owner, _, refused in results if owner == "o") > 0
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    assert int(r.hget(KEYS.files_usage, "#owner:o") or 0) == mine <= KEY_BOUND
    theirs = [(kept, refused) for owner, kept, refused in results if owner == "other"]
    assert theirs[0][1] == 0  # 15 KB of its own: never refused for the other key's files
    assert int(r.hget(KEYS.files_usage, "#owner:other") or 0) == theirs[0][0]


def test_a_refused_or_failed_upload_leaves_nothing(redis_db: str) -> None:
    store = _store(redis_db)
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    with pytest.raises(TooManyLines):
        store.put("o", "f", "batch", io.BytesIO(b"a\nb\nc\n"), 6, max_lines=2)
    assert int(r.hget(KEYS.files_usage, "#total") or 0) == 0
    assert not list(r.scan_iter(KEYS.file("*")))


def test_an_abandoned_upload_is_given_back(redis_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An API process that died mid-upload held a reservation; after ABANDONED_S the next
    reservation gives it back, and its chunks expire on their own."""
    store = _store(redis_db, bound=1000)
    r = redis.Redis.from_url(redis_db, decode_responses=True)
    store._reserve(
        keys=[KEYS.files_usage, KEYS.files_uploading],
        args=["file-dead", 900, 1000, time.time() - files_module.ABANDONED_S - 1, 3600, "o", 2**40],
    )
    assert int(r.hget(KEYS.files_usage, "#total") or 0) == 900
    got = store.put("o", "f", "batch", io.BytesIO(b"x" * 500), 500)  # fits only once reclaimed
    assert store.get("o", got.id) is not None
    assert int(r.hget(KEYS.files_usage, "#total") or 0) == 500
    assert r.hget(KEYS.files_usage, "file-dead") is None
    assert int(r.hget(KEYS.files_usage, "#owner:o") or 0) == 500  # the key's too
    ttl = r.ttl(KEYS.file_chunks(got.id))
    assert ttl == -1  # a finished file's content is kept (no expiry)

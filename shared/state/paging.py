"""Cursor pages over an owner's index (a sorted set of ids scored by creation time), as
OpenAI's list routes page: newest first (or oldest first), ``after`` the last id of the
previous page. A page reads its ids from the index with a LIMIT, never the whole index. Ids of
equal score (written in one step, e.g. one event's deliveries to several endpoints) keep the
index's own order among them (by id), so a page boundary between two of them neither skips
nor repeats one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

# A filtered page (``scan``) examines at most this many ids of the index past its cursor: a
# filter that matches nothing among millions of ids still answers at this cost.
SCAN_MOST = 10_000
_CHUNK_MOST = 1_000  # ids read from the index per round trip while scanning

Position = tuple[float, str]  # (score, id): a place in the index


def as_text(value: Any) -> str:
    """A Redis answer as text, whether the client decodes answers or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def read_records(
    r: redis.Redis, keys: list[str], fields: tuple[str, ...]
) -> list[dict[str, Any] | None]:
    """``fields`` of each hash in ``keys``, in one round trip: the fields present, or None for a
    record gone meanwhile (its first field missing). A page's records, once ``scan`` or
    ``newest_first`` chose their ids."""
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, fields)
    return [
        None
        if values[0] is None
        else {k: v for k, v in zip(fields, values, strict=True) if v is not None}
        for values in pipe.execute()
    ]


def _start(r: redis.Redis, index: str, after: str | None) -> tuple[bool, Position | None]:
    """(whether ``after`` is in the index, its place); no ``after``: the index's start."""
    if not after:
        return True, None
    score: Any = r.zscore(index, after)
    return (False, None) if score is None else (True, (float(score), after))


def _following(
    r: redis.Redis, index: str, at: Position | None, count: int, ascending: bool
) -> list[Position]:
    """Up to ``count`` places of ``index`` past ``at`` (from the start without it), newest
    first unless ``ascending``."""
    if at is None:
        first: Any = r.zrange(index, 0, count - 1, desc=not ascending, withscores=True)
        return [(float(s), as_text(m)) for m, s in first]
    score, member = at
    pipe = r.pipeline(transaction=True)  # the ties and what follows them, from one state
    if ascending:
        pipe.zrangebyscore(index, score, score, withscores=True)
        pipe.zrangebyscore(index, f"({score!r}", "+inf", start=0, num=count, withscores=True)
    else:
        pipe.zrevrangebyscore(index, score, score, withscores=True)
        pipe.zrevrangebyscore(index, f"({score!r}", "-inf", start=0, num=count, withscores=True)
    ties, rest = pipe.execute()
    # Redis orders equal scores by id, byte-wise (in reverse when newest first).
    mark = member.encode()
    after_tie = [
        (float(s), as_text(m))
        for m, s in ties
        if (as_text(m).encode() > mark if ascending else as_text(m).encode() < mark)
    ]
    return (after_tie + [(float(s), as_text(m)) for m, s in rest])[:count]


def newest_first(
    r: redis.Redis, index: str, limit: int, after: str | None
) -> tuple[list[str], bool]:
    """Up to ``limit`` ids older than ``after`` (all, without it), and whether more follow."""
    found, at = _start(r, index, after)
    if not found:
        return [], False
    ids = [m for _, m in _following(r, index, at, limit + 1, ascending=False)]
    return ids[:limit], len(ids) > limit


@dataclass(frozen=True)
class Scanned:
    """A filtered page's ids and whether more may follow. ``resume``: the last id examined when
    the scan stopped at its bound with nothing found, where the next page starts (a client
    passes it as ``after``, like the last id of a page)."""

    ids: list[str]
    more: bool
    resume: str | None = None


def scan(
    r: redis.Redis,
    index: str,
    limit: int,
    after: str | None,
    keep: Callable[[list[str]], list[bool]],
    ascending: bool = False,
) -> Scanned:
    """Up to ``limit`` ids past ``after`` that ``keep`` keeps (it looks at each id's record,
    reading no more of it than the filter needs: a record gone, or filtered out, is skipped),
    newest first unless ``ascending``. Ids are read from the index a chunk at a time and at
    most ``SCAN_MOST`` are examined. Stopping there, the page has what was found and ``more``
    (a next page starts after its last id, examining again what lay past it); with nothing
    found, ``resume`` names the last id examined instead."""
    found, at = _start(r, index, after)
    if not found:
        return Scanned([], False)
    most = SCAN_MOST
    kept: list[str] = []
    examined, count = 0, limit + 1
    while True:
        count = min(count, most - examined)
        places = _following(r, index, at, count, ascending)
        examined += len(places)
        verdicts = keep([m for _, m in places]) if places else []
        for place, wanted in zip(places, verdicts, strict=True):
            if wanted:
                if len(kept) == limit:  # one more than the page: more follow
                    return Scanned(kept, True)
                kept.append(place[1])
            at = place
        if len(places) < count:
            return Scanned(kept, False)
        if examined >= most:
            return Scanned(kept, True, None if kept or at is None else at[1])
        count = min(count * 4, _CHUNK_MOST)

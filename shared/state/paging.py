"""Cursor pages over an owner's index (a sorted set of ids scored by creation time), as
OpenAI's list routes page: newest first, ``after`` the last id of the previous page."""

from __future__ import annotations

from typing import Any

import redis


def newest_first(
    r: redis.Redis, index: str, limit: int, after: str | None
) -> tuple[list[str], bool]:
    """Up to ``limit`` ids older than ``after`` (all, without it), and whether more follow."""
    max_score: str | float = "+inf"
    if after:
        score = r.zscore(index, after)
        if score is None:
            return [], False
        max_score = f"({score}"
    raw: Any = r.zrevrangebyscore(index, max_score, "-inf", start=0, num=limit + 1)
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw]
    return ids[:limit], len(ids) > limit

"""Uploaded files (OpenAI's Files API): any API process serves any file.

A file is a record in Redis (``Keys.file``: the File object's fields and its owner) and its
content, in Redis as a list of chunks (``shared/batch/file_content.py``) or in an S3-compatible
store (``shared/batch/file_content_s3.py``), by ``files.store``. An upload first reserves its size
(``file_reserve.lua``); contents in Redis are bounded by ``files.redis_max_bytes``, every API
key's files (uploads and batch outputs, in either store) by ``files.max_bytes_per_key``, and a
file that would not fit is refused. The content is written next, then ``file_commit.lua`` makes the
file exist. An upload whose API process dies leaves a reservation that the next reservation
gives back after ``ABANDONED_S`` (and chunks in Redis that expire by then). Redis by hand for
the records: no well-kept library keeps such records in Redis.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import redis

from shared import lua
from shared.batch.file_content import Content, CountingReader, RedisContent, Source, TooManyLines
from shared.config.settings import Settings
from shared.keys import Keys
from shared.state import paging

__all__ = ["FileStore", "KeyFull", "StoreFull", "StoredFile", "TooManyLines", "UploadTooSlow"]
ABANDONED_S = 3600.0  # an upload not complete after this is given up
UNBOUNDED = 2**62
# A file record's fields, as ``StoredFile.from_hash`` reads them.
_FIELDS = ("id", "owner", "bytes", "created_at", "filename", "purpose", "lines")


def file_store(s: Settings, keys: Keys, client: redis.Redis) -> FileStore:
    """The file store ``files.store`` names; records in Redis (``client``, answering bytes)."""
    content: Content | None = None
    if s.files.store == "s3":
        from shared.batch.file_content_s3 import S3Content

        content = S3Content(s.files.s3)
    return FileStore(client, keys, s.files.redis_max_bytes, content, s.files.max_bytes_per_key)


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


@dataclass(frozen=True)
class StoredFile:
    id: str
    owner: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    lines: int

    def to_public(self) -> dict[str, Any]:
        """OpenAI's File object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> StoredFile:
        return cls(
            id=h["id"],
            owner=h["owner"],
            bytes=int(h["bytes"]),
            created_at=int(h["created_at"]),
            filename=h.get("filename", ""),
            purpose=h.get("purpose", ""),
            lines=int(h.get("lines") or 0),
        )


class StoreFull(Exception):
    """The upload does not fit in ``files.redis_max_bytes``."""

    def __init__(self, used: int, bound: int) -> None:
        super().__init__(f"{used} of {bound} bytes in use")
        self.used, self.bound = used, bound


class KeyFull(StoreFull):
    """The file does not fit in its API key's ``files.max_bytes_per_key``: ``used`` is what the
    key's files hold already."""


class UploadTooSlow(Exception):
    """The reservation was given back before the upload completed."""


def _owned(raw: Any, owner: str) -> StoredFile | None:
    """The file a record (HGETALL, in bytes) describes, if ``owner``'s."""
    h = {paging.as_text(k): paging.as_text(v) for k, v in raw.items()}
    return StoredFile.from_hash(h) if h and h.get("owner") == owner else None


class FileStore:
    """``client`` answers in bytes (``make_redis(..., decode=False)``); ``content`` defaults to
    chunks in that Redis, bounded by ``bound_bytes``; each key's files by ``key_bound_bytes``."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        bound_bytes: int,
        content: Content | None = None,
        key_bound_bytes: int = UNBOUNDED,
    ) -> None:
        self.r, self.keys, self.bound = client, keys, bound_bytes
        self.key_bound = key_bound_bytes
        self.contents: Content = content or RedisContent(client, keys)
        self._reserve = client.register_script(lua.source("file_reserve"))
        self._commit = client.register_script(lua.source("file_commit"))
        self._delete = client.register_script(lua.source("file_delete"))

    def _file_keys(self, file_id: str, owner: str) -> list[str]:
        k = self.keys
        return [
            k.file(file_id),
            k.file_chunks(file_id),
            k.owner_files(owner),
            k.files_usage,
            k.files_uploading,
        ]

    def put(
        self,
        owner: str,
        filename: str,
        purpose: str,
        stream: Source,
        size: int,
        max_lines: int | None = None,
    ) -> StoredFile:
        """Store ``size`` bytes read from ``stream`` (a chunk at a time: ``stream`` may produce
        its bytes as they are read). Raises KeyFull, StoreFull, TooManyLines (when
        ``max_lines`` is given), UploadTooSlow, or what ``stream`` raises; nothing is left
        behind on any error."""
        file_id, now = new_file_id(), time.time()
        bound = self.bound if self.contents.bounded else UNBOUNDED
        ok, used = self._reserve(
            keys=[self.keys.files_usage, self.keys.files_uploading],
            args=[file_id, size, bound, now, ABANDONED_S, owner, self.key_bound],
        )
        if int(ok) < 0:
            raise KeyFull(int(used), self.key_bound)
        if not int(ok):
            raise StoreFull(int(used), self.bound)
        try:
            reader = CountingReader(stream, max_lines)
            self.contents.write(file_id, reader, int(ABANDONED_S))
            lines = reader.lines
            stored = StoredFile(file_id, owner, size, int(now), filename, purpose, lines)
            flat = [x for pair in asdict(stored).items() for x in pair]
            committed = self._commit(
                keys=self._file_keys(file_id, owner), args=[file_id, now, size, *flat]
            )
            if not int(committed):
                raise UploadTooSlow(file_id)
            return stored
        except BaseException:
            self._delete(keys=self._file_keys(file_id, owner), args=[file_id, ""])
            self.contents.drop(file_id)
            raise

    def get(self, owner: str, file_id: str) -> StoredFile | None:
        if not file_id.startswith("file-"):
            return None
        return _owned(self.r.hgetall(self.keys.file(file_id)), owner)

    def content(self, file_id: str, start: int = 0) -> Iterator[bytes]:
        """The content from byte ``start``, a chunk per read (a large file is never read
        whole)."""
        return self.contents.read(file_id, start)

    def get_any(self, file_id: str) -> StoredFile | None:
        """The file whoever owns it (the worker's side: a batch names its input file)."""
        raw = self.r.hgetall(self.keys.file(file_id))
        h = {paging.as_text(k): paging.as_text(v) for k, v in raw.items()}
        return StoredFile.from_hash(h) if h else None

    def page(
        self, owner: str, limit: int, after: str | None, ascending: bool, purpose: str | None
    ) -> tuple[list[StoredFile], bool, str | None]:
        """A page of the owner's files by creation time, after the file ``after``, of
        ``purpose`` if given: (files, whether more may follow, where the next page starts when
        none was found: ``paging.scan``). Reads the index a page at a time and each
        candidate's owner and purpose, then the records of the page."""

        def keep(ids: list[str]) -> list[bool]:
            pipe = self.r.pipeline(transaction=False)
            for file_id in ids:
                pipe.hmget(self.keys.file(file_id), ("owner", "purpose"))
            return [
                o is not None
                and paging.as_text(o) == owner
                and purpose in (None, paging.as_text(p) if p is not None else "")
                for o, p in pipe.execute()
            ]

        index = self.keys.owner_files(owner)
        got = paging.scan(self.r, index, limit, after, keep, ascending)
        records = paging.read_records(self.r, [self.keys.file(i) for i in got.ids], _FIELDS)
        owned = (_owned(h, owner) for h in records if h is not None)  # not gone since
        return [f for f in owned if f is not None], got.more, got.resume

    def delete(self, owner: str, file_id: str) -> bool:
        if not file_id.startswith("file-"):
            return False
        deleted = bool(
            int(self._delete(keys=self._file_keys(file_id, owner), args=[file_id, owner]))
        )
        if deleted:
            self.contents.drop(file_id)
        return deleted

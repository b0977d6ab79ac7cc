"""Uploaded files (OpenAI's Files API) in Redis: any API process serves any file.

A file is a record (``Keys.file``: the File object's fields and its owner) and its content as
a list of chunks of at most ``CHUNK_BYTES`` (``Keys.file_chunks``), never one huge value. Every
file's content together is bounded by ``files.redis_max_bytes``: an upload first reserves its
size (``file_reserve.lua``) and is refused when it would not fit; its chunks are written with an
expiry, and ``file_commit.lua`` makes the file exist and keeps them. An upload whose API process
dies leaves chunks that expire and a reservation that the next reservation gives back after
``ABANDONED_S``. Redis by hand rather than a library: no well-kept one stores files in Redis.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import redis

from shared.jobs import _lua
from shared.keys import Keys

CHUNK_BYTES = 1 << 20
ABANDONED_S = 3600.0  # an upload not complete after this is given up
WRITE_BATCH = 8  # chunks per pipeline while writing (8 MiB in flight at most)


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


class TooManyLines(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} lines")
        self.limit = limit


class UploadTooSlow(Exception):
    """The reservation was given back before the upload completed."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FileStore:
    """``client`` answers in bytes (``make_redis(..., decode=False)``): a chunk is any bytes,
    and one may end inside a UTF-8 character."""

    def __init__(self, client: redis.Redis, keys: Keys, bound_bytes: int) -> None:
        self.r, self.keys, self.bound = client, keys, bound_bytes
        self._reserve = client.register_script(_lua("file_reserve"))
        self._commit = client.register_script(_lua("file_commit"))
        self._delete = client.register_script(_lua("file_delete"))

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
        stream: IO[bytes],
        size: int,
        max_lines: int | None = None,
    ) -> StoredFile:
        """Store ``size`` bytes read from ``stream``. Raises StoreFull, TooManyLines (when
        ``max_lines`` is given), UploadTooSlow; nothing is left behind on any error."""
        file_id, now = new_file_id(), time.time()
        ok, used = self._reserve(
            keys=[self.keys.files_usage, self.keys.files_uploading],
            args=[file_id, size, self.bound, now, ABANDONED_S],
        )
        if not int(ok):
            raise StoreFull(int(used), self.bound)
        try:
            lines = self._write(file_id, stream, max_lines)
            stored = StoredFile(file_id, owner, size, int(now), filename, purpose, lines)
            fields = {**stored.to_public(), "owner": owner, "lines": lines}
            flat: list[Any] = []
            for name in ("id", "owner", "bytes", "created_at", "filename", "purpose", "lines"):
                flat += [name, fields[name]]
            committed = self._commit(
                keys=self._file_keys(file_id, owner), args=[file_id, now, size, *flat]
            )
            if not int(committed):
                raise UploadTooSlow(file_id)
            return stored
        except BaseException:
            self._delete(keys=self._file_keys(file_id, owner), args=[file_id, ""])
            raise

    def _write(self, file_id: str, stream: IO[bytes], max_lines: int | None) -> int:
        """Append the content in chunks; returns its line count (a last line without a
        newline counts)."""
        key = self.keys.file_chunks(file_id)
        lines, last = 0, b"\n"
        pipe = self.r.pipeline(transaction=False)
        pending = 0
        while chunk := stream.read(CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            if max_lines is not None and lines > max_lines:
                raise TooManyLines(max_lines)
            pipe.rpush(key, chunk)
            pending += 1
            if pending == 1:
                pipe.expire(key, int(ABANDONED_S))
            if pending % WRITE_BATCH == 0:
                pipe.execute()
        if last != b"\n":
            lines += 1
        if max_lines is not None and lines > max_lines:
            raise TooManyLines(max_lines)
        pipe.execute()
        return lines

    def get(self, owner: str, file_id: str) -> StoredFile | None:
        if not file_id.startswith("file-"):
            return None
        raw: Any = self.r.hgetall(self.keys.file(file_id))
        h = {_text(k): _text(v) for k, v in raw.items()}
        if not h or h.get("owner") != owner:
            return None
        return StoredFile.from_hash(h)

    def content(self, file_id: str) -> Iterator[bytes]:
        """The content, a chunk per read (a large file is never read whole)."""
        key = self.keys.file_chunks(file_id)
        i = 0
        while True:
            chunk: Any = self.r.lindex(key, i)
            if chunk is None:
                return
            yield chunk if isinstance(chunk, bytes) else chunk.encode()
            i += 1

    def page(
        self, owner: str, limit: int, after: str | None, ascending: bool, purpose: str | None
    ) -> tuple[list[StoredFile], bool]:
        """A page of the owner's files by creation time, after the file ``after``."""
        index = self.keys.owner_files(owner)
        ids = [_text(i) for i in self.r.zrange(index, 0, -1, desc=not ascending)]
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        out: list[StoredFile] = []
        for file_id in ids:
            f = self.get(owner, file_id)
            if f is None or (purpose is not None and f.purpose != purpose):
                continue
            if len(out) == limit:
                return out, True
            out.append(f)
        return out, False

    def delete(self, owner: str, file_id: str) -> bool:
        if not file_id.startswith("file-"):
            return False
        return bool(int(self._delete(keys=self._file_keys(file_id, owner), args=[file_id, owner])))

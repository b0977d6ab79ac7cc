"""Where a file's content lives: Redis (chunks in a list, bounded) or an S3-compatible object
store (``shared/batch/file_content_s3.py``). The record, the owner's index and the bound stay in
Redis either way (``shared/batch/file_store.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import redis

from shared import lua
from shared.keys import Keys

CHUNK_BYTES = 1 << 20
WRITE_BATCH = 8  # chunks per step while writing (8 MiB in flight at most)


class TooManyLines(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} lines")
        self.limit = limit


class Source(Protocol):
    """What a file's content is read from: an upload's stream, or ``LineReader``."""

    def read(self, size: int = -1, /) -> bytes: ...


class ContentChanged(Exception):
    """Lines read for a file came to other than the bytes reserved for it."""


class LineReader:
    """The bytes of ``lines`` (each followed by a newline), made as they are read: a file
    written from lines produced one at a time (a batch's output) is never held whole. Raises
    ContentChanged if they come to other than ``size`` bytes (what was reserved)."""

    def __init__(self, lines: Iterator[bytes], size: int) -> None:
        self._lines, self._size = lines, size
        self._buf, self._done = bytearray(), 0

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buf) < size:
            line = next(self._lines, None)
            if line is None:
                break
            self._buf += line
            self._buf += b"\n"
        n = len(self._buf) if size < 0 else min(size, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._done += n
        if self._done > self._size or (not out and self._done != self._size):
            raise ContentChanged(f"{self._done} bytes read of {self._size} reserved")
        return out


class CountingReader:
    """Reads ``stream`` through, counting lines (a last line without a newline counts) and
    raising TooManyLines as soon as there are more than ``max_lines``."""

    def __init__(self, stream: Source, max_lines: int | None) -> None:
        self._stream, self._max = stream, max_lines
        self._newlines, self._last = 0, b"\n"

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._newlines += data.count(b"\n")
            self._last = data[-1:]
            if self._max is not None and self._newlines > self._max:
                raise TooManyLines(self._max)
        elif self._max is not None and self.lines > self._max:
            raise TooManyLines(self._max)
        return data

    @property
    def lines(self) -> int:
        return self._newlines + (0 if self._last == b"\n" else 1)


class Content(Protocol):
    bounded: bool  # counted against files.redis_max_bytes

    def write(self, file_id: str, reader: CountingReader, expire_s: int) -> None: ...

    def read(self, file_id: str, start: int = 0) -> Iterator[bytes]: ...

    def drop(self, file_id: str) -> None: ...


class RedisContent:
    """A list of chunks of at most CHUNK_BYTES per file (``Keys.file_chunks``), never one huge
    value. ``client`` answers in bytes: a chunk may end inside a UTF-8 character. The list
    expires until ``file_commit.lua`` keeps it, so an abandoned upload cleans itself up."""

    bounded = True

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._append = client.register_script(lua.source("file_append"))

    def write(self, file_id: str, reader: CountingReader, expire_s: int) -> None:
        """WRITE_BATCH chunks per step, each step placed after the chunks already stored
        (``file_append.lua``): a step sent twice (its reply lost) stores its chunks once."""
        key = self.keys.file_chunks(file_id)
        stored, batch = 0, []
        while chunk := reader.read(CHUNK_BYTES):
            batch.append(chunk)
            if len(batch) == WRITE_BATCH:
                stored = int(self._append(keys=[key], args=[stored, expire_s, *batch]))
                batch = []
        if batch:
            self._append(keys=[key], args=[stored, expire_s, *batch])

    def read(self, file_id: str, start: int = 0) -> Iterator[bytes]:
        """From byte ``start`` on (every chunk but the last holds CHUNK_BYTES)."""
        key = self.keys.file_chunks(file_id)
        i, skip = divmod(start, CHUNK_BYTES)
        while True:
            chunk: Any = self.r.lindex(key, i)
            if chunk is None:
                return
            yield chunk[skip:] if skip else chunk
            skip = 0
            i += 1

    def drop(self, file_id: str) -> None:
        pass  # file_delete.lua unlinks the list with the record

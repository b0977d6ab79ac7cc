"""Reading a batch input file line by line from any byte offset (the expansion cursor), a
chunk at a time: a 200 MB file is never held whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RawLine:
    number: int  # 1-based, every physical line counted (as OpenAI numbers them)
    end: int  # the byte offset just after the line and its newline
    data: bytes  # without the newline


def lines_from(chunks: Iterable[bytes], offset: int = 0, number: int = 0) -> Iterator[RawLine]:
    """The lines of the content ``chunks`` (read from byte ``offset``, after ``number``
    lines), a last line without a newline included."""
    buf, base = b"", offset
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            number += 1
            yield RawLine(number, base + nl + 1, buf[start:nl])
            start = nl + 1
        buf, base = buf[start:], base + start
    if buf:
        yield RawLine(number + 1, base + len(buf), buf)


def parse_cursor(cursor: str) -> tuple[int, int]:
    """A batch's cursor "<byte offset>:<lines read>"."""
    offset, _, number = cursor.partition(":")
    return int(offset or 0), int(number or 0)

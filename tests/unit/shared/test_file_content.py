"""``LineReader``: a file's bytes made from lines as the store reads them, checked against the
size reserved for them."""

from __future__ import annotations

import pytest

from shared.batch.file_content import ContentChanged, LineReader


def _drain(reader: LineReader, size: int) -> bytes:
    out = b""
    while chunk := reader.read(size):
        assert len(chunk) <= size
        out += chunk
    return out


def test_lines_come_out_as_newline_ended_bytes_in_reads_of_any_size() -> None:
    lines = [b"a" * 5, b"", b"bc" * 7]
    whole = b"".join(x + b"\n" for x in lines)
    for size in (1, 3, 8, 100):
        assert _drain(LineReader(iter(lines), len(whole)), size) == whole


@pytest.mark.parametrize("reserved", [5, 20], ids=["more than reserved", "fewer than reserved"])
def test_lines_that_do_not_come_to_the_size_reserved_are_refused(reserved: int) -> None:
    with pytest.raises(ContentChanged):
        _drain(LineReader(iter([b"abcdefgh"]), reserved), 4)

"""Server-Sent Events as providers send them: the ``data`` of each event, in order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield each event's data (multi-line data joined with newlines); comments, ``event:``,
    ``id:`` and ``retry:`` fields are skipped (chat streams carry everything in ``data``)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)

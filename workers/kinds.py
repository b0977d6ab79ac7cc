"""The job kinds this worker version can run (``shared.state.job_record.KINDS`` lists every
kind the gateway knows of). A job of any other kind was made by a newer API during a rolling
upgrade: ``JobRunner.run`` puts it back for another worker instead of running it as something
it is not."""

from __future__ import annotations

KNOWN: frozenset[str] = frozenset({"chat"})


def knows(kind: str) -> bool:
    """Whether this worker can run a job of ``kind``."""
    return kind in KNOWN

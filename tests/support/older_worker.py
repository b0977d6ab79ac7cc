"""An older worker version for the job-kind tests: ``python tests/support/older_worker.py
worker ...`` is ``llm-gateway worker ...`` (the same entry point, the same arguments) in a
process whose worker knows no job kind, not even ``chat``: the version of a rolling upgrade
that lacks the kind a newer API made its job with (``workers.kinds``). It puts every job back
instead of running it."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    # Before the entry point runs (it patches the standard library for gevent first): nothing
    # imported here is patched by gevent.
    from workers import kinds

    kinds.KNOWN = kinds.KNOWN - {"chat"}
    from gateway_cli.main import main as entry

    return entry(sys.argv[1:])


if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, not this folder
    sys.exit(main())

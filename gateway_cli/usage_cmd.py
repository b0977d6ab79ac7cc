"""``llm-gateway usage``: the table ``GET /admin/usage`` answers, read from the fleet's Redis
(an operator's command, like ``config set``: it needs the config, not an API key)."""

from __future__ import annotations

import json
import sys

from gateway_cli.common import load_or_exit
from shared.errors import InvalidRequest
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.spend.budget import BudgetStore
from shared.spend.report import day_range, group_of, report, table
from shared.spend.usage import SpendStore


def usage(
    config_path: str | None,
    start: str | None,
    end: str | None,
    group_by: str | None,
    key_id: str | None,
    as_json: bool,
) -> int:
    loaded = load_or_exit(config_path)
    s = loaded.settings
    try:
        days = day_range({"start": start, "end": end})
        group = group_of(group_by, "key")
    except InvalidRequest as exc:
        print(f"llm-gateway usage: {exc.message}", file=sys.stderr)
        return 2
    client = make_redis(s.redis_url)
    keys = Keys(s.redis_prefix)
    doc = report(
        s,
        SpendStore(client, keys),
        BudgetStore(client, keys),
        [key_id] if key_id else None,
        days,
        group,
    )
    print(json.dumps(doc, indent=2) if as_json else table(doc))
    return 0

"""The usage report of ``GET /v1/usage``, ``GET /admin/usage`` and ``llm-gateway usage``: one
source for the range, the grouping, the totals and the table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from shared.config.settings import Settings
from shared.errors import InvalidRequest
from shared.spend.budget import BudgetStore, usd
from shared.spend.usage import GROUPS, Row, SpendStore, days_between

MAX_DAYS = 400
DEFAULT_DAYS = 30


def parse_day(value: str | None, name: str, default: dt.date) -> dt.date:
    """A UTC day from ``YYYY-MM-DD`` or Unix seconds."""
    if value is None or value == "":
        return default
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.UTC).date()
        return dt.date.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"{name}: a UTC day as YYYY-MM-DD or Unix seconds; got {value!r}", param=name
        ) from None


def day_range(args: Mapping[str, str | None]) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    end = parse_day(args.get("end"), "end", today)
    start = parse_day(args.get("start"), "start", end - dt.timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise InvalidRequest("start: must not be after end", param="start")
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(f"The range is at most {MAX_DAYS} days.", param="start")
    return days_between(start, end)


def group_of(value: str | None, default: str) -> str:
    group = value or default
    if group not in GROUPS:
        raise InvalidRequest(
            f"group_by: one of {', '.join(GROUPS)}; got {group!r}", param="group_by"
        )
    return group


def _total(rows: Iterable[Row]) -> dict[str, Any]:
    total = Row({})
    for r in rows:
        for m in ("requests", "prompt_tokens", "completion_tokens", "cached_tokens"):
            total.add(m, getattr(r, m))
        total.add("cost_micro", r.cost_micro)
        total.add("unpriced", r.unpriced)
    return total.view()


def budget_view(settings: Settings, budgets: BudgetStore, owner: str) -> dict[str, Any] | None:
    key = settings.key(owner)
    if key is None or key.budget is None:
        return None
    b = key.budget
    state = budgets.read(owner, b.period)
    return {
        "usd": b.usd,
        "period": b.period,
        "spent_usd": usd(state.spent),
        "reserved_usd": usd(state.reserved),
        "remaining_usd": usd(state.left(b.micro)),
        "resets_at": state.resets_at(),
    }


def report(
    settings: Settings,
    spend: SpendStore,
    budgets: BudgetStore,
    owners: list[str] | None,
    days: list[str],
    group_by: str,
) -> dict[str, Any]:
    """``owners`` None: every key with usage in the range (the admin's view)."""
    who = owners if owners is not None else spend.owners(days)
    rows = spend.rows(who, days, group_by)
    return {
        "object": "usage",
        "start": f"{days[0][:4]}-{days[0][4:6]}-{days[0][6:]}",
        "end": f"{days[-1][:4]}-{days[-1][4:6]}-{days[-1][6:]}",
        "group_by": group_by,
        "data": [r.view() for r in rows],
        "total": _total(rows),
        "budgets": {o: v for o in who if (v := budget_view(settings, budgets, o)) is not None},
    }


COLUMNS = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd")


def table(doc: Mapping[str, Any]) -> str:
    """The report as a plain text table (``llm-gateway usage``)."""
    group = doc["group_by"]
    heads = ["key_id", *([] if group == "key" else [group]), *COLUMNS]
    lines = [
        [str(r.get(h)) if h != "cost_usd" else _money(r[h]) for h in heads] for r in doc["data"]
    ]
    t = doc["total"]
    lines.append(
        [
            "total",
            *([] if group == "key" else [""]),
            *(str(t[c]) if c != "cost_usd" else _money(t[c]) for c in COLUMNS),
        ]
    )
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in lines]
    for owner, b in (doc.get("budgets") or {}).items():
        reset = f", resets {b['resets_at']}" if b["resets_at"] else ""
        out.append(
            f"budget {owner}: ${b['usd']:g} a {b['period']}, ${b['spent_usd']:.6f} spent, "
            f"${b['reserved_usd']:.6f} reserved, ${b['remaining_usd']:.6f} left{reset}"
        )
    return "\n".join(out)


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.6f}"

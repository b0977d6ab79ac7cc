"""Spend, unit by unit: prices, the cost of usage, the reservation's bounds, the UTC calendar
in Lua, budget periods and charges counted once (fakeredis runs the Lua)."""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import json

import fakeredis
import pytest

from shared import lua
from shared.config.defaults import DEFAULTS
from shared.config.layers import deep_merge
from shared.config.loader import build
from shared.config.settings import Deployment
from shared.errors import ConfigError
from shared.keys import Keys
from shared.spend.budget import BudgetStore, usd_text
from shared.spend.cost import (
    IMAGE_TOKENS_BOUND,
    Usage,
    cost_micro,
    output_bound,
    prompt_bound,
    reservation_micro,
)
from shared.spend.prices import Price, bundled
from shared.spend.usage import Charge, SpendStore

KEYS = Keys("gw")


def test_cost_is_exact_in_micro_usd_and_rounded_up() -> None:
    price = Price(0.15, 0.6, 0.075)  # gpt-4o-mini
    # 7 prompt tokens at 0.15 micro-USD each: 1.05, up to 2; floats would make 0.15 inexact.
    assert cost_micro(Usage(7, 0, 0), price) == 2
    assert cost_micro(Usage(1_000_000, 1_000_000, 0), price) == 750_000
    # Cached prompt tokens at their own price.
    assert cost_micro(Usage(1_000_000, 0, 400_000), price) == 600_000 * 0.15 + 400_000 * 0.075
    assert cost_micro(Usage(10, 10), None) is None  # unknown, never 0
    assert cost_micro(Usage(10, 10), Price(0, 0)) == 0  # a free model is 0, and known


def test_usage_reads_openai_and_zai_shapes() -> None:
    u = Usage.of(
        {"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8}}
    )
    assert u == Usage(12, 5, 8)
    assert Usage.of(None) == Usage()
    assert Usage.of({"prompt_tokens": "12", "completion_tokens": True}) == Usage()


def test_the_bundled_table_fills_what_config_leaves_out() -> None:
    dep = Deployment.of("z-ai", "glm-4.6")
    assert dep.price == Price(0.6, 2.2, 0.11) and dep.max_output_tokens == 128_000
    assert bundled("openai/gpt-4o-mini") is not None
    own = Deployment.of("z-ai", "glm-4.6", price=Price(1, 2), max_output_tokens=10)
    assert own.price == Price(1, 2) and own.max_output_tokens == 10
    unknown = Deployment.of("local", "my-finetune")
    assert unknown.price is None and unknown.max_output_tokens is None


def test_the_prompt_bound_is_at_least_its_bytes_and_counts_images() -> None:
    text = "héllo wörld " * 50
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 5}
    assert prompt_bound(body) >= len(text.encode())
    image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                ],
            }
        ]
    }
    assert prompt_bound(image) >= IMAGE_TOKENS_BOUND


def test_the_output_bound_and_the_dearest_price() -> None:
    cheap = Deployment("a", "m", price=Price(1, 2), max_output_tokens=100)
    dear = Deployment("b", "m", price=Price(3, 1, 5), max_output_tokens=50)
    assert output_bound({"max_tokens": 7, "n": 3}, [cheap]) == 21
    assert output_bound({"max_completion_tokens": 9}, [cheap]) == 9
    assert output_bound({}, [cheap, dear]) == 100
    assert output_bound({}, [cheap, Deployment("c", "m")]) is None
    # Input at the dearest of input and cached input (5), output at the dearest output (2).
    assert reservation_micro(10, 10, [cheap, dear]) == 10 * 5 + 10 * 2
    assert reservation_micro(10, 10, [Deployment("c", "m")]) == 0


def test_config_validates_prices_and_budgets() -> None:
    def doc(**over: object) -> dict[str, object]:
        d: dict[str, object] = {
            "providers": {"mock": {"type": "mock", "base_url": "http://127.0.0.1:1/v1"}},
            "models": {
                "m": [
                    {
                        "provider": "mock",
                        "model": "m",
                        "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                    }
                ]
            },
            "auth": {
                "keys": [{"id": "k", "key_sha256": "a" * 64, "budget": {"usd": 5, "period": "day"}}]
            },
        }
        d.update(over)
        return deep_merge(copy.deepcopy(DEFAULTS), d)

    s = build(doc()).settings
    assert s.models["m"][0].price == Price(1, 2)
    key = s.key("k")
    assert key is not None and key.budget is not None and key.budget.micro == 5_000_000
    with pytest.raises(ConfigError, match="period"):
        build(
            doc(
                auth={
                    "keys": [
                        {"id": "k", "key_sha256": "a" * 64, "budget": {"usd": 5, "period": "week"}}
                    ]
                }
            )
        )
    with pytest.raises(ConfigError, match="input_per_mtok"):
        build(
            doc(models={"m": [{"provider": "mock", "model": "m", "price": {"output_per_mtok": 2}}]})
        )


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC),  # a leap day
        dt.datetime(2100, 2, 28, 23, 59, 59, tzinfo=dt.UTC),  # 2100 is no leap year
        dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC),  # the year turns
        dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2030, 6, 30, 8, 30, tzinfo=dt.UTC),
    ],
)
def test_the_lua_calendar_matches_python(when: dt.datetime) -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    script = r.register_script(lua.as_function("spend_clock") + "return spend_clock({}, ARGV)")
    now = calendar.timegm(when.utctimetuple())
    got = script(args=[now])
    day = when.date()
    nxt = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    assert got[1] == day.strftime("%Y%m%d") and got[2] == day.strftime("%Y%m")
    assert int(got[3]) == calendar.timegm((day + dt.timedelta(days=1)).timetuple())
    assert int(got[4]) == calendar.timegm(nxt.timetuple())


def test_a_new_period_starts_spent_again_and_carries_reservations() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    r.hset(KEYS.budget("k"), mapping={"period": "d20000101", "spent": 900, "reserved": 70})
    state = BudgetStore(r, KEYS).read("k", "day")
    assert (state.spent, state.reserved) == (0, 70)  # a read does not write the new period
    assert r.hget(KEYS.budget("k"), "spent") == "900"
    assert state.left(1000) == 930
    assert BudgetStore(r, KEYS).read("k", "total").spent == 0  # another period's id, too
    assert usd_text(930) == "0.00093" and usd_text(0) == "0" and usd_text(5_000_000) == "5"


def test_a_charge_counts_once_per_delivery() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    spend = SpendStore(r, KEYS)
    r.hset(KEYS.job("job_1"), mapping={"status": "running"})
    charge = Charge("mock", "m", Usage(10, 5), 1234)
    assert spend.charge("job_1", "token-a", "k", charge, "month") == 1
    assert spend.charge("job_1", "token-a", "k", charge, "month") == 0  # a retried round trip
    assert spend.charge("job_1", "token-b", "k", charge, "month") == 1  # another delivery's call
    assert r.hget(KEYS.job("job_1"), "cost_micro") == "2468"
    assert r.hget(KEYS.budget("k"), "spent") == "2468"
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    rows = spend.rows(["k"], [day], "model")
    assert len(rows) == 1 and rows[0].view()["cost_usd"] == pytest.approx(0.002468)
    assert rows[0].view()["input_tokens"] == 20 and rows[0].requests == 2
    assert spend.owners([day]) == ["k"]
    unpriced = Charge("mock", "other", Usage(3, 3), None)
    spend.charge("job_1", "token-c", "k", unpriced, "month")
    assert r.hget(KEYS.job("job_1"), "cost_unknown") == "1"
    other = [row for row in spend.rows(["k"], [day], "model") if row.group["model"] == "other"]
    assert other[0].view()["cost_usd"] is None and other[0].unpriced == 1
    assert json.dumps(other[0].view())  # the API's JSON

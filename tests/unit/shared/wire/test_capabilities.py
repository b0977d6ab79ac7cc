"""Which deployments can honour a request's answer-changing fields, and when none can."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config.loader import load_config
from shared.config.settings import Settings
from shared.wire.capabilities import FULL, ZAI, degraded, refusal, unhonoured

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def settings() -> Settings:
    doc: dict[str, Any] = {
        "providers": {
            "z-ai": {"type": "zai", "base_url": "http://z"},
            "oai": {"type": "openai", "base_url": "http://o"},
        },
        "models": {
            "glm": [{"provider": "z-ai", "model": "glm-4.6"}],
            "mixed": [
                {"provider": "z-ai", "model": "glm-4.6"},
                {"provider": "oai", "model": "gpt-4o"},
            ],
        },
    }
    return load_config(env={}, overrides=doc).settings


@pytest.mark.parametrize(
    ("asked", "param"),
    [
        ({"n": 3}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"stop": ["a", "b"]}, "stop"),
    ],
)
def test_zai_cannot_honour_what_changes_the_answer(asked: dict[str, Any], param: str) -> None:
    assert unhonoured(ZAI, {**MSG, **asked}) == param
    assert unhonoured(FULL, {**MSG, **asked}) is None


def test_fields_that_ask_for_nothing_are_honoured_by_anyone() -> None:
    for asked in (
        {"n": 1},
        {"logprobs": False},
        {"top_logprobs": 0},
        {"stop": ["a"]},
        {"stop": "a"},
        {"user": "u", "metadata": {"a": "b"}, "service_tier": "auto"},
    ):
        assert unhonoured(ZAI, {**MSG, **asked}) is None, asked


def test_json_schema_is_degraded_on_zai_only() -> None:
    fmt = {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}
    assert degraded(ZAI, {**MSG, **fmt}) == ("response_format",)
    assert degraded(FULL, {**MSG, **fmt}) == ()
    assert degraded(ZAI, {**MSG, "response_format": {"type": "json_object"}}) == ()


def test_refused_only_when_no_deployment_of_the_model_can_honour_it() -> None:
    s = settings()
    refused = refusal(s, "glm", {**MSG, "n": 3})
    assert refused is not None and refused[0] == "n"
    assert refused[1].startswith("n: ") and "z-ai" in refused[1]
    assert refusal(s, "mixed", {**MSG, "n": 3}) is None  # the OpenAI deployment can
    assert refusal(s, "glm", {**MSG, "n": 1}) is None

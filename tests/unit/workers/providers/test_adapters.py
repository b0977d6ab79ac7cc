from __future__ import annotations

import json

import httpx
import pytest
import respx

from shared.config.settings import ProviderSettings
from shared.wire import capabilities
from workers.providers.base import ProviderCallError, parse_retry_after
from workers.providers.openai_compat import OpenAICompatAdapter
from workers.providers.registry import build_adapters
from workers.providers.zai import ZaiAdapter

ZAI = ProviderSettings(
    name="z-ai",
    type="zai",
    base_url="https://zai.test/api/paas/v4",
    api_key="zk-secret",
    max_connections=20,
)
OAI = ProviderSettings(
    name="openai",
    type="openai",
    base_url="https://oai.test/v1",
    api_key="ok-secret",
    max_connections=20,
)
BODY = {
    "model": "public",
    "messages": [{"role": "user", "content": "hi"}],
    "gateway": {"priority": "batch"},
}
ANSWER = {
    "id": "x",
    "created": 1,
    "model": "glm-4.6",
    "request_id": "r1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_zai_body_follows_its_ranges_and_fields() -> None:
    a = ZaiAdapter(ZAI)
    out = a.build_body(
        {
            **BODY,
            "temperature": 0,
            "top_p": 1.0,
            "stop": "a",
            "max_completion_tokens": 30,
            "seed": 1,
            "user": "user-123456",
            "response_format": {"type": "json_object"},
        },
        "glm-4.6",
    )
    assert out["model"] == "glm-4.6"
    assert "gateway" not in out and "temperature" not in out and out["do_sample"] is False
    assert out["top_p"] == 0.99 and out["stop"] == ["a"] and out["max_tokens"] == 30
    assert "seed" not in out and "max_completion_tokens" not in out
    assert out["response_format"] == {"type": "json_object"}
    assert out["user_id"] == "user-123456"
    assert a.build_body({**BODY, "temperature": 1.5}, "m")["temperature"] == 0.99
    assert a.build_body({**BODY, "temperature": 0.5}, "m")["temperature"] == 0.5


@respx.mock
def test_zai_answer_gets_the_openai_shape_and_the_key_header() -> None:
    route = respx.post("https://zai.test/api/paas/v4/chat/completions").respond(200, json=ANSWER)
    out = ZaiAdapter(ZAI).complete(BODY, "glm-4.6", timeout=5)
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"] == "yo"
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Bearer zk-secret"
    assert json.loads(sent.content)["model"] == "glm-4.6"


@respx.mock
def test_zai_business_code_error_body() -> None:
    respx.post("https://zai.test/api/paas/v4/chat/completions").respond(
        429, json={"error": {"code": "1113", "message": "arrears"}}
    )
    with pytest.raises(ProviderCallError) as info:
        ZaiAdapter(ZAI).complete(BODY, "glm-4.6", timeout=5)
    assert (info.value.kind, info.value.status, info.value.code) == ("http", 429, "1113")
    assert info.value.message == "arrears"


@respx.mock
def test_zai_sensitive_finish_is_a_content_filter_error() -> None:
    blocked = {**ANSWER, "choices": [{**ANSWER["choices"][0], "finish_reason": "sensitive"}]}
    respx.post("https://zai.test/api/paas/v4/chat/completions").respond(200, json=blocked)
    with pytest.raises(ProviderCallError) as info:
        ZaiAdapter(ZAI).complete(BODY, "glm-4.6", timeout=5)
    assert info.value.kind == "content_filter"


@respx.mock
def test_openai_error_with_retry_after_ms() -> None:
    respx.post("https://oai.test/v1/chat/completions").respond(
        429,
        headers={"retry-after-ms": "1500"},
        json={"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
    )
    with pytest.raises(ProviderCallError) as info:
        OpenAICompatAdapter(OAI).complete(BODY, "gpt-4o-mini", timeout=5)
    assert info.value.retry_after == 1.5 and info.value.code == "rate_limit_exceeded"


@respx.mock
@pytest.mark.parametrize(
    ("side_effect", "kind"),
    [(httpx.ReadTimeout("slow"), "timeout"), (httpx.ConnectError("refused"), "connect")],
)
def test_transport_failures(side_effect: Exception, kind: str) -> None:
    respx.post("https://oai.test/v1/chat/completions").mock(side_effect=side_effect)
    with pytest.raises(ProviderCallError) as info:
        OpenAICompatAdapter(OAI).complete(BODY, "m", timeout=5)
    assert info.value.kind == kind


@respx.mock
@pytest.mark.parametrize("payload", [b"<html>oops</html>", b'{"no": "choices"}'])
def test_malformed_answers(payload: bytes) -> None:
    respx.post("https://oai.test/v1/chat/completions").respond(200, content=payload)
    with pytest.raises(ProviderCallError) as info:
        OpenAICompatAdapter(OAI).complete(BODY, "m", timeout=5)
    assert info.value.kind == "malformed"


def test_retry_after_forms() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({})) is None
    date = parse_retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert date == 0.0  # in the past


def test_connections_are_sharded() -> None:
    a = OpenAICompatAdapter(
        ProviderSettings(name="p", type="openai", base_url="http://x/v1", max_connections=500)
    )
    assert len(a.pool.clients) == 50
    assert len({id(a.pool.pick()) for _ in range(50)}) == 50


def test_zai_never_narrows_a_field_that_changes_the_answer() -> None:
    # What Z.ai cannot honour reaches build_body only if the worker's check was bypassed:
    # then it goes as asked (the provider refuses it), never quietly cut down.
    asked = {"n": 3, "logprobs": True, "top_logprobs": 2, "stop": ["a", "b"]}
    out = ZaiAdapter(ZAI).build_body({**BODY, **asked}, "glm-4.6")
    assert {k: out.get(k) for k in asked} == asked
    # The same fields asking for nothing are left out.
    nothing = {"n": 1, "logprobs": False, "top_logprobs": 0, "stop": []}
    out = ZaiAdapter(ZAI).build_body({**BODY, **nothing}, "glm-4.6")
    assert not set(nothing) & set(out)


def test_zai_json_schema_goes_as_json_object_with_the_schema_in_the_system_prompt() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    body = {**BODY, "messages": messages, "response_format": fmt}
    out = ZaiAdapter(ZAI).build_body(body, "glm-4.6")
    assert out["response_format"] == {"type": "json_object"}
    system = out["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    assert json.dumps(schema, separators=(",", ":"), sort_keys=True) in system["content"]
    assert "'place'" in system["content"] and out["messages"][1:] == messages[1:]
    assert body["messages"] == messages  # the job's request is not changed
    # No system message: one of its own goes first.
    out = ZaiAdapter(ZAI).build_body({**BODY, "response_format": fmt}, "glm-4.6")
    assert [m["role"] for m in out["messages"]] == ["system", "user"]


def test_each_adapter_honours_what_the_api_judges_its_provider_type_by() -> None:
    mock = ProviderSettings(name="m", type="mock", base_url="https://m.test/v1")
    adapters = build_adapters({"z-ai": ZAI, "openai": OAI, "m": mock})
    for name, p in {"z-ai": ZAI, "openai": OAI, "m": mock}.items():
        assert adapters[name].capabilities == capabilities.for_type(p.type), name
    assert adapters["z-ai"].capabilities == capabilities.ZAI
    assert adapters["openai"].capabilities == capabilities.FULL

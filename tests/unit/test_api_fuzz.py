"""No chat body, however malformed, produces a 5xx: every answer is a job or a 4xx envelope."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_api_validation import H, make_app

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "model",
    "messages",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "user",
    "seed",
    "metadata",
    "tools",
    "tool_choice",
    "response_format",
    "gateway",
    "logit_bias",
    "stream_options",
]
message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "system", "assistant", "tool", "x"]) | json_values,
        "content": json_values,
        "tool_call_id": json_values,
        "tool_calls": json_values,
    },
)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).flatmap(
    lambda d: st.builds(
        lambda msgs: {**d, "messages": msgs}, st.lists(message, max_size=3) | json_values
    )
)

APP = None


def client() -> Any:
    global APP
    if APP is None:
        import gateway_api.submit as submit_module

        submit_module.enqueue = lambda app, job_id, priority: None  # no broker in unit tests
        APP = make_app()
    return APP.test_client()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies | json_values)
def test_no_body_produces_a_server_error(body: Any) -> None:
    resp = client().post(
        "/v1/chat/completions", json=body, headers={**H, "Prefer": "respond-async"}
    )
    assert resp.status_code < 500, resp.get_json()
    if resp.status_code >= 400:
        error = resp.get_json()["error"]
        assert error["type"] and error["message"]
    else:
        assert resp.status_code == 202

"""Schemathesis against the app in-process (WSGI, fakeredis, publishing recorded): generated
requests for every documented operation, headers and query values included, get no 5xx and
only answers the document describes; the stateful phase follows the document's links (submit
a job, then read, stream and cancel that job) so header values reach code past the lookup."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import H, make_app

# No broker: what the app publishes is recorded (tests/support/api.py). The examples' model;
# short deadlines: no worker runs here, so a stream or a wait for a job
# lasts until its deadline (then 504, as documented).
APP = make_app(
    models={"glm-4.6": [{"provider": "p", "model": "x"}]},
    queue={"deadline_s": 1, "max_deadline_s": 2, "redeliver_after_s": 0.5},
    streaming={"keepalive_s": 0.5},
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case) -> None:
    # No worker here: a sync chat request would wait for its deadline, so ask for the job.
    case.headers = {**(case.headers or {}), **H, "Prefer": "respond-async"}
    # The document gives field types and ranges, not every cross-field rule (a tool message
    # needs tool_call_id...), so a schema-valid body may still get a 400: that is not checked.
    # What is: no 5xx, and every answer's status, content type, headers and body as documented.
    case.call_and_validate(checks=CHECKS)


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    def setup(self) -> None:
        # Each scenario starts from an empty store, so a replayed scenario sees the answers
        # it saw the first time (hypothesis requires it).
        APP.extensions["gateway"].redis.flushdb()

    def before_call(self, case: Case) -> None:
        # Generated headers (Last-Event-ID, Idempotency-Key, Cache-Control...) are kept.
        case.headers = {**(case.headers or {}), **H, "Prefer": "respond-async"}

    def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
        # 502/503/504 are documented answers (no worker runs here: a job times out); an
        # internal error never is.
        assert response.status_code != 500, (case.method, case.path, response.text)
        case.validate_response(response, checks=[status_code_conformance])


TestStatefulWorkflow = Workflow.TestCase
TestStatefulWorkflow.settings = settings(
    # Generate only: shrinking replays a scenario against clocks and deadlines that moved on.
    phases=[Phase.explicit, Phase.generate],
    database=None,
    max_examples=60,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

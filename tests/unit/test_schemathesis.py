"""Schemathesis against the app in-process (WSGI, fakeredis, publishing recorded): generated
requests for every documented operation get no 5xx and only answers the document describes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import gateway_api.submit as submit_module
from tests.unit.test_api_validation import H, make_app

APP = make_app(models={"glm-4.6": [{"provider": "p", "model": "x"}]})  # the examples' model
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(submit_module, "enqueue", lambda app, job_id, priority: None)
    yield


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case) -> None:
    # No worker here: a sync chat request would wait for its deadline, so ask for the job.
    case.headers = {**(case.headers or {}), **H, "Prefer": "respond-async"}
    # The document gives field types and ranges, not every cross-field rule (a tool message
    # needs tool_call_id...), so a schema-valid body may still get a 400: that is not checked.
    # What is: no 5xx, and every answer's status, content type, headers and body as documented.
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ]
    )

"""/openapi.json describes every route the app serves, is a valid OpenAPI 3 document, and the
app's real answers conform to it; /docs renders it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from tests.support.api import OK, H, make_app

UNDOCUMENTED = {"/openapi.json", "/docs", "/static/<path:filename>"}


@pytest.fixture
def client() -> FlaskClient:
    return make_app().test_client()


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")  # no key needed
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.get_json()
    return doc


def conforms(spec: dict[str, Any], name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    OAS30Validator(schema).validate(instance)


def test_the_document_is_valid_openapi_3(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_route_is_documented_with_its_methods(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    app = client.application
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in spec["paths"], path
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        assert {m.lower() for m in methods} <= set(spec["paths"][path]), path
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if path.startswith("/v1/"):  # every /v1 operation names its errors
                errors = [c for c in op["responses"] if c.startswith(("4", "5"))]
                assert errors, (method, path)
                for code in errors:
                    ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/Error")


def test_real_answers_conform(client: FlaskClient, spec: dict[str, Any]) -> None:
    accepted = client.post("/v1/jobs", headers=H, json={"request": OK, "metadata": {"a": "b"}})
    assert accepted.status_code == 202
    conforms(spec, "Job", accepted.get_json())
    listed = client.get("/v1/jobs", headers=H)
    conforms(spec, "JobList", listed.get_json())
    conforms(spec, "ModelList", client.get("/v1/models", headers=H).get_json())
    bad = client.post("/v1/chat/completions", headers=H, json={"messages": []})
    assert bad.status_code == 400
    conforms(spec, "Error", bad.get_json())
    conforms(spec, "Error", client.get("/v1/models").get_json())  # 401
    with pytest.raises(ValidationError):  # the schemas are not vacuous
        conforms(spec, "Job", {"id": "job_x"})


def test_docs_page_points_at_the_document(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"/openapi.json" in page.data

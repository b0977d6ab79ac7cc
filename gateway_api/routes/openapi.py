"""``GET /openapi.json`` (the OpenAPI 3 document, ``gateway_api.openapi``) and ``GET /docs`` (a
browsable page of it). Neither needs a key."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from gateway_api.openapi import build_spec

bp = Blueprint("openapi", __name__)

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>llm-gateway API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"><p>The API description is <a href="/openapi.json">/openapi.json</a>
(OpenAPI 3). This page renders it with Swagger UI when unpkg.com is reachable.</p></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>if (window.SwaggerUIBundle) {
  SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});
}</script></body></html>
"""


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> Response:
    return Response(_PAGE, mimetype="text/html")

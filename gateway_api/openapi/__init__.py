"""The API's OpenAPI 3 description: ``spec.build_spec`` assembles it from the path modules
(one per area of the API) and the answer schemas; ``gateway_api.routes.openapi`` serves it."""

from gateway_api.openapi.spec import build_spec

__all__ = ["build_spec"]

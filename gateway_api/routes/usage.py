"""Spend and tokens: ``GET /v1/usage`` for the calling key, ``GET /admin/usage`` for every key
(``shared/spend/report.py``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway_api.routes import incoming
from gateway_api.services import current_services
from shared.spend.report import day_range, group_of, report

bp = Blueprint("usage", __name__)


@bp.get("/v1/usage")
def own_usage() -> Response:
    services = current_services()
    principal = incoming.client(services)
    days = day_range(request.args)
    group = group_of(request.args.get("group_by"), "model")
    return jsonify(
        report(
            services.settings,
            services.stores.spend,
            services.stores.budgets,
            [principal.key_id],
            days,
            group,
        )
    )


@bp.get("/admin/usage")
def all_usage() -> Response:
    services = current_services()
    incoming.admin(services)
    days = day_range(request.args)
    group = group_of(request.args.get("group_by"), "key")
    key = request.args.get("key_id")
    return jsonify(
        report(
            services.settings,
            services.stores.spend,
            services.stores.budgets,
            [key] if key else None,
            days,
            group,
        )
    )

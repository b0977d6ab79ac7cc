"""What one request's answer reports in its headers, noted while the request is handled.

The app makes one ``Notes`` per request (``gateway_api/app.py``) and adds the headers from it to
every answer, errors included: ``x-ratelimit-*`` (``key_limits``) and
``x-gateway-budget-remaining-usd`` (``budget``). The steps that learn these facts are handed the
object; none of them reaches for Flask's request globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_api.auth import Principal
from shared.state.ratelimit import Verdict


@dataclass
class Notes:
    principal: Principal | None = None  # the caller, once authenticated
    verdict: Verdict | None = None  # what the key's limits said when a request was taken
    budget_left: int = -1  # micro-USD the key's budget had left as its job was created

"""The front door's side of budgets: the reservation a new job of a key with a budget holds
(its cost's upper bound, checked and taken in ``create.lua``), the 429 ``budget_exceeded``
when it does not fit, and ``x-gateway-budget-remaining-usd`` on every answer to such a key."""

from __future__ import annotations

import logging
import time

from flask import Response

from gateway_api.auth import Principal
from gateway_api.notes import Notes
from gateway_api.services import Services
from shared.chat_request import ChatRequest
from shared.config.settings import Budget
from shared.errors import BudgetExceeded, InvalidRequest
from shared.spend.budget import BudgetHold, BudgetState, usd_text
from shared.spend.cost import cost_bound

log = logging.getLogger(__name__)
REMAINING_HEADER = "x-gateway-budget-remaining-usd"
# Held by requests in flight rather than spent: room comes back as they end.
IN_FLIGHT_RETRY_S = 1.0


def budget_of(services: Services, owner: str) -> Budget | None:
    key = services.settings.key(owner)
    return key.budget if key is not None else None


def hold_for(services: Services, principal: Principal, chat: ChatRequest) -> BudgetHold | None:
    """The reservation a new job of this request holds, or None when its key has no budget."""
    budget = budget_of(services, principal.key_id)
    if budget is None:
        return None
    micro = cost_bound(chat.body, services.settings.models.get(chat.model, ()))
    if micro is None:
        raise InvalidRequest(
            f"This API key has a budget, so each request's cost must be bounded: set max_tokens "
            f"(the maximum output of model '{chat.model}' is not known; an operator can set "
            "models.<name>[].max_output_tokens).",
            param="max_tokens",
        )
    return BudgetHold(budget.micro, budget.period, micro)


def refusal(budget: Budget, state: BudgetState, hold: BudgetHold) -> BudgetExceeded:
    spent, reserved = state.spent / 1e6, state.reserved / 1e6
    this = hold.micro / 1e6
    what = {"day": "today's (UTC)", "month": "this month's (UTC)", "total": "the total"}
    head = (
        f"Budget exceeded: {what[budget.period]} budget of this API key is ${budget.usd:g}; "
        f"${spent:.6g} is spent and ${reserved:.6g} held by requests in flight, and this "
        f"request may cost up to ${this:.6g}."
    )
    if state.spent + hold.micro <= budget.micro:  # it fits once requests in flight settle
        err = BudgetExceeded(head + " Retry when requests in flight have ended.")
        err.retry_after = IN_FLIGHT_RETRY_S
        err.should_retry = True
        return err
    reset = state.resets_at()
    if reset is None:
        return BudgetExceeded(head + " The budget does not reset (period: total).")
    err = BudgetExceeded(head + f" It resets at {reset}.")
    err.retry_after = max(1.0, state.reset_s - time.time())
    return err


def refuse_when_spent(services: Services, owner: str) -> None:
    """A batch of a key whose budget is spent is refused as a whole. Once it runs, each line
    reserves its cost bound as it becomes a job (``batch_expand.lua``, as ``create.lua`` does
    for a request), so a running batch never takes its key past the budget."""
    key_budget = budget_of(services, owner)
    if key_budget is None:
        return
    state = services.stores.budgets.read(owner, key_budget.period)
    if state.spent >= key_budget.micro:
        raise refusal(key_budget, state, BudgetHold(key_budget.micro, key_budget.period, 1))


def add_headers(resp: Response, services: Services, notes: Notes) -> None:
    principal = notes.principal
    if principal is None:
        return
    budget = budget_of(services, principal.key_id)
    if budget is None:
        return
    try:  # as it is now (a synchronous answer's own job has settled)
        left = services.stores.budgets.read(principal.key_id, budget.period).left(budget.micro)
    except Exception:  # a status header is not worth failing the answer for
        left = notes.budget_left  # what create.lua found left, if this request made a job
        if left < 0:
            log.warning("could not read the budget state", exc_info=True)
            return
    resp.headers[REMAINING_HEADER] = usd_text(left)

"""What a call cost, from the provider's ``usage``, and what a request may cost at most (the
reservation of a key with a budget)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.config.settings import Deployment
from shared.spend.prices import Price
from shared.wire import fastjson

# An image part is billed by its size, not by the bytes of its URL: bound it on its own. OpenAI's
# largest tiling of a high-detail image is 85 + 170 x 8 = 1,445 tokens; Z.ai's are below.
IMAGE_TOKENS_BOUND = 2_000


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache

    @staticmethod
    def of(usage: Mapping[str, Any] | None) -> Usage:
        u = usage or {}
        details = u.get("prompt_tokens_details") or {}
        return Usage(
            _count(u.get("prompt_tokens")),
            _count(u.get("completion_tokens")),
            _count(details.get("cached_tokens") if isinstance(details, Mapping) else 0),
        )


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def cost_micro(usage: Usage, price: Price | None) -> int | None:
    """The call's cost in micro-USD, rounded up; None when the price is unknown."""
    if price is None:
        return None
    inp, out, cached = price.per_token_micro()
    cached_n = min(usage.cached_tokens, usage.prompt_tokens)
    exact = (usage.prompt_tokens - cached_n) * inp + cached_n * cached
    return math.ceil(exact + usage.completion_tokens * out)


def prompt_bound(body: Mapping[str, Any]) -> int:
    """An upper bound of the prompt's tokens: its UTF-8 bytes as JSON (a token is at least one
    byte of text, and the JSON around each message is longer than a chat template's tokens for
    it), plus a fixed bound per image part. Not the chars/4 estimate, which is not a bound."""
    text = {k: body[k] for k in ("messages", "tools", "functions", "response_format") if k in body}
    images = sum(
        1
        for m in body.get("messages") or ()
        if isinstance(m, Mapping) and isinstance(m.get("content"), list)
        for part in m["content"]
        if isinstance(part, Mapping) and part.get("type") == "image_url"
    )
    return len(fastjson.dumps_str(text).encode()) + images * IMAGE_TOKENS_BOUND


def output_bound(body: Mapping[str, Any], deployments: Iterable[Deployment]) -> int | None:
    """The most output tokens the request may produce: its ``max_completion_tokens`` or
    ``max_tokens``, else the largest ``max_output_tokens`` of its deployments (None if one is
    unknown), times ``n``."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    given = body.get("n")
    n = given if isinstance(given, int) and given > 0 else 1
    if isinstance(asked, int) and asked > 0:
        return int(asked) * n
    limits = [d.max_output_tokens for d in deployments]
    if not limits or any(v is None for v in limits):
        return None
    return max(v for v in limits if v is not None) * n


def cost_bound(body: Mapping[str, Any], deployments: Sequence[Deployment]) -> int | None:
    """What a request reserves of its key's budget: the upper bound of its cost on the model's
    ``deployments`` (micro-USD), or None when its output is not bounded (a key with a budget
    cannot run it). The API reserves it for a request, the batch duty for a line."""
    output = output_bound(body, deployments)
    if output is None:
        return None
    return reservation_micro(prompt_bound(body), output, deployments)


def reservation_micro(prompt: int, output: int, deployments: Iterable[Deployment]) -> int:
    """The dearest cost ``prompt`` and ``output`` tokens can have on any priced deployment
    (0 when none is priced: their cost is unknown, never counted as spent)."""
    prices = [d.price for d in deployments if d.price is not None]
    if not prices:
        return 0
    inp = max(max(p.per_token_micro()[0], p.per_token_micro()[2]) for p in prices)
    out = max(p.per_token_micro()[1] for p in prices)
    return math.ceil(prompt * inp + output * out)

"""Prices of the models in README and the deploy examples, in USD per million tokens.

A deployment's ``price`` in config overrides these; a deployment with neither counts its tokens
and reports its cost as unknown (never as 0). ``max_output_tokens`` bounds a request that does
not set ``max_tokens`` (the reservation of a key with a budget).

Sources, read 2026-12-01:
- Z.ai: https://docs.z.ai/guides/overview/pricing (GLM-4.6, GLM-4.5 family; cached input is
  "cached input storage: limited-time free", the read price is what is listed here).
- OpenAI: https://platform.openai.com/docs/pricing (standard tier, not batch or flex).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``cached_input_per_mtok`` None: cached tokens at the input price."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None

    def per_token_micro(self) -> tuple[Fraction, Fraction, Fraction]:
        """(input, output, cached input) in micro-USD per token: USD per million tokens is
        micro-USD per token. Exact fractions: 0.15 is 3/20, not 0.1499999."""
        cached = self.cached_input_per_mtok
        inp = Fraction(str(self.input_per_mtok))
        return (
            inp,
            Fraction(str(self.output_per_mtok)),
            inp if cached is None else Fraction(str(cached)),
        )


@dataclass(frozen=True)
class ModelFacts:
    price: Price
    max_output_tokens: int


BUNDLED: dict[str, ModelFacts] = {
    # Z.ai GLM
    "glm-4.6": ModelFacts(Price(0.6, 2.2, 0.11), 128_000),
    "glm-4.5": ModelFacts(Price(0.6, 2.2, 0.11), 96_000),
    "glm-4.5-x": ModelFacts(Price(2.2, 8.9, 0.45), 96_000),
    "glm-4.5-air": ModelFacts(Price(0.2, 1.1, 0.03), 96_000),
    "glm-4.5-airx": ModelFacts(Price(1.1, 4.5, 0.22), 96_000),
    "glm-4.5-flash": ModelFacts(Price(0.0, 0.0, 0.0), 96_000),
    # OpenAI
    "gpt-4o": ModelFacts(Price(2.5, 10.0, 1.25), 16_384),
    "gpt-4o-mini": ModelFacts(Price(0.15, 0.6, 0.075), 16_384),
    "gpt-4.1": ModelFacts(Price(2.0, 8.0, 0.5), 32_768),
    "gpt-4.1-mini": ModelFacts(Price(0.4, 1.6, 0.1), 32_768),
    "gpt-4.1-nano": ModelFacts(Price(0.1, 0.4, 0.025), 32_768),
    "gpt-5": ModelFacts(Price(1.25, 10.0, 0.125), 128_000),
    "gpt-5-mini": ModelFacts(Price(0.25, 2.0, 0.025), 128_000),
    "gpt-5-nano": ModelFacts(Price(0.05, 0.4, 0.005), 128_000),
}


def bundled(model: str) -> ModelFacts | None:
    """The table's entry for a provider's model id (``glm-4.6``, ``openai/gpt-4o-mini``)."""
    return BUNDLED.get(model) or BUNDLED.get(model.rsplit("/", 1)[-1])

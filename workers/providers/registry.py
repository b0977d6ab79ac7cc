"""Build one adapter per configured provider."""

from __future__ import annotations

from collections.abc import Mapping

from shared.config.settings import ProviderSettings
from workers.providers.base import Adapter
from workers.providers.openai_compat import OpenAICompatAdapter
from workers.providers.zai import ZaiAdapter

_ADAPTERS: dict[str, type[OpenAICompatAdapter]] = {
    "openai": OpenAICompatAdapter,
    "mock": OpenAICompatAdapter,
    "zai": ZaiAdapter,
}


def build_adapters(providers: Mapping[str, ProviderSettings]) -> dict[str, Adapter]:
    return {name: _ADAPTERS[p.type](p) for name, p in providers.items()}

"""Which deployments a job tries, in order, and the breaker its first call is checked by.

The API and the worker both need this: the worker to route, the API to name the first
breaker in the job (``breaker_hint``) so ``begin.lua`` can read that breaker's state in the
round trip that takes the lease (``workers/runner.py`` skips the separate check when it
found the breaker closed and the provider healthy).
"""

from __future__ import annotations

from shared.config.settings import Deployment, Settings
from shared.keys import Keys
from shared.state.breaker import breaker_name


def order_deployments(
    deployments: tuple[Deployment, ...], preferred: str | None
) -> list[Deployment]:
    if not preferred:
        return list(deployments)
    first = [d for d in deployments if d.provider == preferred]
    return first + [d for d in deployments if d.provider != preferred]


def breaker_hint(settings: Settings, keys: Keys, model: str, preferred: str | None) -> str:
    """ "<breaker hash key>\\n<health hash key>" of the model's first deployment, or ""."""
    deployments = order_deployments(settings.models.get(model, ()), preferred)
    for dep in deployments:
        provider = settings.providers.get(dep.provider)
        if provider is None:
            continue
        name = breaker_name(dep.provider, dep.model, provider.breaker_per_model)
        return f"{keys.breaker(name)}\n{keys.health(dep.provider)}"
    return ""

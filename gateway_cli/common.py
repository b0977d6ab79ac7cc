"""Helpers the process commands share."""

from __future__ import annotations

import ipaddress
import os
import sys

from shared.config.loader import LoadedConfig
from shared.config.sources import ConfigSources
from shared.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_exit(config_path: str | None) -> LoadedConfig:
    """Validate every layer (the Redis layer and the HTTP source too) before starting
    anything; publish the path for child processes."""
    if config_path:
        os.environ["GATEWAY_CONFIG_FILE"] = os.path.abspath(config_path)
    try:
        return ConfigSources().load_at_start()
    except ConfigError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc

"""Helpers the process commands share."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys

import redis

from shared.config.loader import LoadedConfig
from shared.config.settings import Settings
from shared.config.sources import ConfigSources
from shared.errors import ConfigError
from shared.redis_checks import read_check

log = logging.getLogger("llm_gateway")


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


def check_redis_or_exit(settings: Settings, process: str) -> None:
    """Before a process starts: log each way its Redis could lose accepted jobs, and refuse to
    start on one that evicts keys unless ``redis.allow_eviction`` (``shared.redis_checks``).
    A Redis that cannot be reached or read is a warning only: the process copes with an outage."""
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        check = read_check(client)
    finally:
        client.close()
    for warning in check.warnings:
        log.warning("%s", warning)
    refusal = check.refusal(settings.redis_allow_eviction)
    if refusal:
        print(f"llm-gateway: refusing to start the {process}: {refusal}", file=sys.stderr)
        raise SystemExit(2)

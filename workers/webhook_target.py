"""Where a webhook may go: http(s) only, and not to a private, loopback, link-local or
otherwise internal address unless ``webhooks.allow_private`` says so (a webhook URL is a
key holder's input: without this, it reaches the gateway's own network)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class Refused(Exception):
    """The target is not allowed; no attempt is made."""


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check(url: str, allow_private: bool) -> None:
    """Raise Refused unless ``url`` may be delivered to. Every address the host resolves to
    is checked (a name with one public and one internal address is refused)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {parts.scheme or '?'}://")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"the host does not resolve: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if _internal(ip):
            raise Refused(
                f"{parts.hostname} resolves to {ip}, an internal address "
                "(webhooks.allow_private is off)"
            )

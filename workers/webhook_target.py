"""Where a webhook may go, and how it is sent there.

A webhook URL is a key holder's input: without a guard it reaches the gateway's own network (a
cloud's metadata address, an admin port on loopback). So a target is http(s) only and, unless
``webhooks.allow_private`` says so, every address its host resolves to must be public: global
(``ip.is_global``, which leaves out private, loopback, link-local, shared 100.64.0.0/10 and the
other special ranges) and not multicast, reserved or site-local. An IPv6 address that carries an
IPv4 one is judged by that IPv4 address too: IPv4-mapped, NAT64 (64:ff9b::/96), 6to4, Teredo.

The address checked is the address connected to. ``PinnedBackend`` opens each connection: it
resolves the host once, checks every answer and dials one of them, so a name that answers a
public address first and an internal one a moment later (DNS rebinding) cannot move the
connection. The URL's host still names the server in the Host header, TLS SNI and the
certificate check. Only the status and headers of a receiver's answer matter: its body is read
up to ``MAX_REPLY_BYTES`` and the connection dropped, so a receiver cannot make a worker hold
a large answer (64 sends run at once in a worker).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the host's addresses; ``system_resolve`` unless a test passes its own.
Resolve = Callable[[str, int], list[str]]
MAX_REPLY_BYTES = 4096  # of a receiver's answer body, read before the connection is dropped
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: the last 32 bits are IPv4


class Refused(Exception):
    """The target is not allowed; no attempt is made."""


def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses as the system's resolver answers them (each once, in its order)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def internal(ip: Address) -> bool:
    """Whether ``ip`` is not a public address, so no webhook goes there by default."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the socket reaches the IPv4 address itself
            return internal(ip.ipv4_mapped)
        if ip in _NAT64:  # a NAT64 gateway forwards to the embedded IPv4 address
            return internal(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
        carried = [ip.sixtofour, *(ip.teredo or ())]
        if ip.is_site_local or any(v4 is not None and internal(v4) for v4 in carried):
            return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def vetted(host: str, port: int, resolve: Resolve = system_resolve) -> list[str]:
    """Resolve ``host`` once and return its addresses; Refused when it does not resolve or
    any address is internal (a name with one public and one internal address is refused)."""
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise Refused(f"the host does not resolve: {exc}") from None
    if not addresses:
        raise Refused("the host does not resolve")
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if internal(ip):
            raise Refused(
                f"{host} resolves to {ip}, an internal address (webhooks.allow_private is off)"
            )
    return addresses


def _split(url: str) -> tuple[str, int]:
    """The URL's host and port; Refused unless it is http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {parts.scheme or '?'}://")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def check(url: str, allow_private: bool, resolve: Resolve = system_resolve) -> None:
    """Raise Refused unless ``url`` may be delivered to as its host resolves now. A send
    checks again as it connects (``PinnedBackend``): this answer alone never lets one through."""
    host, port = _split(url)
    if not allow_private:
        vetted(host, port, resolve)


class PinnedBackend(httpcore.SyncBackend):
    """httpcore's network backend for webhook sends: each connection resolves its host once
    and (``vet``: unless ``allow_private``) checks every answer before dialling one of them,
    so what was checked is what is reached. ``dial`` opens the connection to that address
    (the system's sockets unless a test passes its own)."""

    def __init__(
        self,
        vet: bool,
        resolve: Resolve = system_resolve,
        dial: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._vet, self._resolve = vet, resolve
        self._dial = dial or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self._vet:
            addresses = vetted(host, port, self._resolve)
        else:
            try:
                addresses = self._resolve(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"{host}: {exc}") from exc
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:  # in the resolver's order, as socket.create_connection does
            try:
                return self._dial.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure


def pinned_client(
    allow_private: bool,
    verify: ssl.SSLContext,
    resolve: Resolve = system_resolve,
    dial: httpcore.NetworkBackend | None = None,
) -> httpx.Client:
    """An httpx client whose every connection goes through a ``PinnedBackend``. It never
    follows a redirect (one could lead past the check: a 3xx is a failed attempt) and reads no
    proxy from the environment (a proxy would connect on its own, unchecked)."""
    transport = httpx.HTTPTransport(verify=verify, retries=0)
    # httpx.HTTPTransport takes no network backend; its httpcore pool does (public httpcore
    # API), as in workers/providers/pool.py. tests/unit/workers/test_webhook_target.py fails
    # if an upgrade moves the attribute: every dial there must go through the backend.
    transport._pool._network_backend = PinnedBackend(not allow_private, resolve, dial)
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)


def send(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int, str | None]:
    """POST ``body`` to ``url`` through a ``pinned_client``; returns the answer's status and
    its ``Retry-After`` header. Raises Refused (no attempt made) or an httpx.HTTPError."""
    _split(url)
    with client.stream("POST", url, content=body, headers=headers, timeout=timeout_s) as resp:
        read = 0
        for piece in resp.iter_raw():  # a small answer is read whole: the connection is kept
            read += len(piece)
            if read >= MAX_REPLY_BYTES:
                break
        return resp.status_code, resp.headers.get("retry-after")

"""How a webhook reaches its receiver: the address checked is the address connected to (a name
that answers differently a moment later cannot move the connection), the URL's name stays the
server's name (Host header, TLS SNI, certificate check), and a receiver's answer is read only
up to a cap. Local receivers; the resolver and the dialling are injected, so no real DNS and
no connection ever leaves the machine."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.wire.tls import shared_ssl_context
from workers.webhook_target import MAX_REPLY_BYTES, Refused, check, pinned_client, send

PUBLIC = "93.184.216.34"
NAME = "hooks.example"
HUGE = 64 << 20  # what the greedy receiver offers
CHUNK = b"x" * 65536


class Receiver:
    """A local receiver on 127.0.0.1: records each request's path and Host, and (over TLS)
    the server name the client asked for. ``/huge`` answers a 64 MiB body."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.got: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.got.append({"path": self.path, "host": self.headers.get("host")})
                huge = self.path == "/huge"
                self.send_response(200)
                self.send_header("content-length", str(HUGE if huge else 2))
                self.end_headers()
                if not huge:
                    self.wfile.write(b"ok")
                    return
                try:  # until the client hangs up
                    for _ in range(HUGE // len(CHUNK)):
                        self.wfile.write(CHUNK)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Dialer(httpcore.SyncBackend):
    """The network under the pinned backend: records every address dialled and the bytes
    read back; a loopback address is really dialled, any other fails here (nothing leaves
    the machine)."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.read = 0

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.addresses.append(host)
        if host != "127.0.0.1":
            raise httpcore.ConnectError(f"{host}: no route from a test")
        return _Counted(super().connect_tcp(host, port, *args, **kwargs), self)


class _Counted(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, dialer: Dialer) -> None:
        self._inner, self._dialer = inner, dialer

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, timeout)
        self._dialer.read += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Counted(self._inner.start_tls(ssl_context, server_hostname, timeout), self._dialer)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def test_a_name_that_rebinds_to_loopback_after_the_check_never_reaches_it(
    receiver: Receiver,
) -> None:
    url = f"http://{NAME}:{receiver.port}/hook"
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:  # public first, loopback ever after
        asked.append(host)
        return [PUBLIC] if len(asked) == 1 else ["127.0.0.1"]

    dial = Dialer()
    client = pinned_client(False, shared_ssl_context(), rebinding, dial)
    check(url, allow_private=False, resolve=rebinding)  # the check sees the public address
    with pytest.raises(Refused, match="127.0.0.1"):  # the connection's own answer is checked
        send(client, url, b"{}", {}, 5)
    assert dial.addresses == [] and receiver.got == []

    asked.clear()  # the connection resolves once and dials what it checked, nothing else
    with pytest.raises(httpx.ConnectError):
        send(client, url, b"{}", {}, 5)
    assert asked == [NAME] and dial.addresses == [PUBLIC] and receiver.got == []


@pytest.mark.parametrize("address", ["100.100.100.200", "2002:a9fe:a9fe::1", "fec0::1"])
def test_a_name_resolving_to_a_metadata_or_internal_address_is_refused_unsent(
    address: str,
) -> None:
    dial = Dialer()
    client = pinned_client(False, shared_ssl_context(), lambda h, p: [PUBLIC, address], dial)
    with pytest.raises(Refused, match="internal address"):
        send(client, f"https://{NAME}/hook", b"{}", {}, 5)
    assert dial.addresses == []


def test_allow_private_still_reaches_a_local_receiver(receiver: Receiver) -> None:
    dial = Dialer()
    client = pinned_client(True, shared_ssl_context(), lambda h, p: ["127.0.0.1"], dial)
    assert send(client, f"http://{NAME}:{receiver.port}/ok", b"{}", {}, 5) == (200, None)
    assert receiver.got == [{"path": "/ok", "host": f"{NAME}:{receiver.port}"}]
    assert dial.addresses == ["127.0.0.1"]


def test_a_receiver_answering_a_huge_body_is_read_only_up_to_the_cap(
    receiver: Receiver,
) -> None:
    dial = Dialer()
    client = pinned_client(True, shared_ssl_context(), lambda h, p: ["127.0.0.1"], dial)
    status, _ = send(client, f"http://{NAME}:{receiver.port}/huge", b"{}", {}, 30)
    assert status == 200 and receiver.got[0]["path"] == "/huge"
    # The cap, plus at most two of the transport's socket reads (64 KiB each) around it.
    assert MAX_REPLY_BYTES <= 8192 and dial.read <= MAX_REPLY_BYTES + 2 * 65536 < HUGE // 100


def _certificates(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(A server context whose certificate names ``name``, a client context trusting only
    the test authority that signed it.)"""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test authority")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


def test_over_tls_the_urls_name_is_sent_as_sni_and_checked_against_the_certificate(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = _certificates(tmp_path, NAME)
    rx = Receiver(server_tls)
    try:
        client = pinned_client(True, client_tls, lambda h, p: ["127.0.0.1"], Dialer())
        assert send(client, f"https://{NAME}:{rx.port}/tls", b"{}", {}, 5)[0] == 200
        assert rx.server_names == [NAME]
        assert rx.got == [{"path": "/tls", "host": f"{NAME}:{rx.port}"}]
        # Another name at the same address: its certificate does not match, nothing is sent.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            send(client, f"https://other.example:{rx.port}/tls", b"{}", {}, 5)
        assert len(rx.got) == 1
    finally:
        rx.close()

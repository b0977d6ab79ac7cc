"""A whole gunicorn response in one ``send``: the head and a body written in one piece.

gunicorn writes a response's status line and headers with one ``sendall`` and the body with
another, so every answer costs two syscalls; on these VMs a ``send`` is the costliest step of
a request (py-spy, API at c=64: 20% of samples in ``socket.send``, 5% of them the separate
head). A response whose body arrives in one piece with its length known (every JSON answer
here) now leaves in one. Chunked responses, streams, empty bodies, HEAD and 204/304 go
through gunicorn's own path unchanged. ``tests/unit/gateway_api/test_one_send.py`` compares the
bytes with gunicorn's own, so an upgrade that changes ``Response`` fails the suite.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from gunicorn.http import wsgi

    response = wsgi.Response
    if getattr(response.write, "_gateway_one_send", False):
        return
    original = response.write

    def write(self: Any, arg: bytes) -> None:
        if (
            self.headers_sent
            or self.chunked
            or self._omits_body
            or not isinstance(arg, bytes)
            or not arg
            or self.response_length is None
            or len(arg) > self.response_length
        ):
            original(self, arg)
            return
        tosend = self.default_headers()  # as gunicorn's send_headers builds the head
        tosend.extend([f"{k}: {v}\r\n" for k, v in self.headers])
        head = ("{}\r\n".format("".join(tosend))).encode("latin-1")
        self.headers_sent = True
        self.sent += len(arg)
        self.sock.sendall(head + arg)

    write._gateway_one_send = True  # type: ignore[attr-defined]
    response.write = write

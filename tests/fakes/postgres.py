"""A fake PostgreSQL server that refuses every password, as Supabase does with a wrong one: it
speaks the start of the wire protocol (declines TLS, asks for a SCRAM-less cleartext password,
then answers FATAL 28P01), over real TCP on loopback.

    with WrongPasswordPostgres.running() as fake:
        url = f"postgresql://postgres:nope@127.0.0.1:{fake.port}/postgres"
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Self

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _error(user: str) -> bytes:
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "28P01"),
            (b"M", f'password authentication failed for user "{user}"'),
        )
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class WrongPasswordPostgres:
    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.attempts = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[Self]:
        fake = cls()
        fake._thread.start()
        try:
            yield fake
        finally:
            fake._socket.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn, suppress(ConnectionError, OSError):
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        while True:
            (length,) = struct.unpack("!I", _read(conn, 4))
            payload = _read(conn, length - 4)
            (code,) = struct.unpack("!I", payload[:4])
            if code in (SSL_REQUEST, GSS_REQUEST):
                conn.sendall(b"N")  # no TLS here; the client goes on in plain text
                continue
            break
        parts = payload[4:].split(b"\0")
        params = dict(zip(parts[0::2], parts[1::2], strict=False))
        user = params.get(b"user", b"postgres").decode()
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = _read(conn, 1)
        (length,) = struct.unpack("!I", _read(conn, 4))
        _read(conn, length - 4)
        if kind == b"p":
            self.attempts += 1
        conn.sendall(_error(user))

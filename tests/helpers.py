"""Small tools the I/O and API tests share: servers on free ports, deadlines, raw peers."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import toad

T = TypeVar("T")


@contextmanager
def running_server(**options: Any) -> Iterator[toad.Server]:
    """A toad.Server on 127.0.0.1 and a free port, with block=False; stopped afterwards."""
    server = toad.Server(**options)
    server.start("127.0.0.1", 0, block=False)
    try:
        yield server
    finally:
        server.stop()


def poll_until(
    endpoints: toad.Server | toad.Connection | Sequence[toad.Server | toad.Connection],
    done: Callable[[], T],
    timeout: float = 10.0,
    what: str = "the condition",
) -> T:
    """Poll the endpoint (or each of several) until ``done()`` is truthy; fail after ``timeout`` seconds."""
    group = [endpoints] if isinstance(endpoints, (toad.Server, toad.Connection)) else list(endpoints)
    deadline = time.monotonic() + timeout
    while True:
        for endpoint in group:
            endpoint.poll()
        result = done()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        if len(group) == 1:
            group[0].wait_events(min(remaining, 0.05))
        else:
            time.sleep(0.002)


def wait_until(done: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Wait for ``done()`` without polling anything (for state another thread changes)."""
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


class RawClient:
    """A hand-driven WebSocket client on a plain socket, for sending what a good client would not."""

    def __init__(self, port: int, *, handshake: bool = True, path: str = "/") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        if handshake:
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            head = self.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"closed before {marker!r}; got {self.buffer!r}")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> None:
        self.sock.sendall(frame(opcode, payload, fin=fin, mask=mask))

    def recv_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"closed after {self.buffer!r}")
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv_frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        b0, b1 = self.recv_exactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.recv_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.recv_exactly(8))
        return b0 & 0x0F, self.recv_exactly(length)

    def recv_close(self) -> tuple[int, bytes]:
        """Skip data frames until a Close frame; return its code and reason."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if payload else 1005, payload[2:]

    def at_eof(self, timeout: float = 10.0) -> bool:
        """Whether the server closed the TCP connection (within ``timeout``)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """One frame as a client sends it (masked unless ``mask=False``)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

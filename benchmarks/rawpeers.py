"""Many WebSocket clients in one process: raw non-blocking sockets on one selector.

The machinery the soak test (``soak.py``) and the lobby benchmark (``lobby.py``) share:
a non-blocking connect, the opening handshake, a buffered ``send()`` that waits for
``EVENT_WRITE`` only after a partial send, reading, the server's frames parsed just
enough (no extensions, fragments left to the caller), and dropping a connection.
Client frames are masked by ``loadgen.masked_frame``.

What a client does with its frames, and what counts as a failure, belongs to the
benchmark: it subclasses :class:`RawPeer` for its clients' state and :class:`RawPeers`
for their behaviour, filling in the hooks (``handshake``, ``on_open``, ``on_frame``,
``on_refused``, ``on_connect_failed``, ``on_broken``, ``on_eof``, and ``on_data`` or
``on_masked_frame`` when it wants them). Each hook's docstring says when it is called
and what it must leave behind.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
from typing import Generic, TypeVar

import loadgen

# A client's state: the three every client passes through, then CLOSED for one whose
# socket is gone. A benchmark adds its own states with numbers from FIRST_FREE_STATE.
CONNECTING, OPENING, OPEN, CLOSED = range(4)
FIRST_FREE_STATE = 4

RECV_SIZE = 262144  # bytes asked of one recv()
_HEAD = struct.Struct("!BB")
_LENGTH_16 = struct.Struct("!H")
_LENGTH_64 = struct.Struct("!Q")


def close_code(payload: bytes) -> int:
    """The status code of a Close frame's payload; 1005 (none received) when it has none."""
    return _LENGTH_16.unpack(payload[:2])[0] if len(payload) >= 2 else 1005


def close_reply(payload: bytes) -> bytes:
    """The masked Close frame answering a server's Close: its status code echoed, no reason."""
    return loadgen.masked_frame(0x8, payload[:2])


def pong(payload: bytes) -> bytes:
    """The masked Pong frame answering a Ping with ``payload``."""
    return loadgen.masked_frame(0xA, payload)


class RawPeer:
    """One client's socket, its state and its two buffers.

    ``sock`` is None until :meth:`RawPeers.connect`; ``buf`` holds what was read and
    not yet parsed (the handshake's reply, then the server's frames); ``out`` what
    ``send()`` could not write yet. Subclasses add their own ``__slots__``.
    """

    __slots__ = ("buf", "out", "sock", "state")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.state = CONNECTING
        self.buf = bytearray()
        self.out = bytearray()


P = TypeVar("P", bound=RawPeer)


class RawPeers(Generic[P]):
    """Clients of the WebSocket server at ``127.0.0.1:port``, on one selector.

    The selector's key data is the client (a :class:`RawPeer`). A client is registered
    for ``EVENT_WRITE`` while it connects, then for ``EVENT_READ``, with ``EVENT_WRITE``
    added only while ``out`` holds bytes a partial send left behind. A subclass drives
    the loop: it calls :meth:`connect` for each client and :meth:`poll` to wait for and
    handle its sockets' events, between its own timers.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.request = loadgen.handshake_request(port)

    # -- the hooks ----------------------------------------------------------------

    def handshake(self, peer: P) -> bytes:
        """The opening handshake's request for ``peer``, sent once its connect completes (default: for ``/``)."""
        return self.request

    def on_connect_failed(self, peer: P, err: int) -> None:
        """The connect failed with ``errno`` ``err`` (at once, or when the socket became writable)."""
        raise OSError(err, f"connect: {os.strerror(err)}")

    def on_refused(self, peer: P, reply: bytes) -> None:
        """The server answered the handshake with something other than 101; ``reply`` is all read so far."""
        raise ConnectionError(f"handshake refused: {reply[:60]!r}")

    def on_open(self, peer: P) -> None:
        """The server accepted the handshake (``buf`` now holds only what followed it).

        Must set ``peer.state`` to ``OPEN`` (or a later state of the benchmark's): the
        frames already in ``buf`` are parsed next, unless the state is ``CLOSED``.
        """
        peer.state = OPEN

    def on_data(self, peer: P, data: bytes) -> None:
        """``data`` arrived for ``peer`` (handshake reply or frames), before it is parsed."""

    def on_frame(self, peer: P, b0: int, payload: bytes) -> None:
        """A whole frame from the server: its first byte (FIN, RSV and opcode bits) and its payload."""

    def on_masked_frame(self, peer: P) -> None:
        """The server sent a masked frame (RFC 6455 5.1 forbids it); it is still passed on, masked."""

    def on_broken(self, peer: P, where: str, exc: OSError) -> None:
        """``send`` or ``recv`` (``where``) failed with ``exc``: the connection is unusable."""
        self.release(peer)

    def on_eof(self, peer: P) -> None:
        """The server ended the TCP stream."""
        self.release(peer)

    # -- the machinery ------------------------------------------------------------

    def connect(self, peer: P) -> bool:
        """Open ``peer``'s non-blocking socket (TCP_NODELAY) and start connecting to the server.

        True once it is registered for ``EVENT_WRITE``, where :meth:`on_writable` sends
        the handshake; False when the connect failed at once (``on_connect_failed``
        has been called, ``peer.sock`` is set and not registered).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer.sock = sock
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            self.on_connect_failed(peer, err)
            return False
        self.selector.register(sock, selectors.EVENT_WRITE, peer)
        return True

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the sockets, and handle what they are ready for.

        A client closed while this batch of events is handled is not read any more.
        """
        for key, mask in self.selector.select(timeout):
            peer = key.data
            if mask & selectors.EVENT_WRITE:
                self.on_writable(peer)
            if mask & selectors.EVENT_READ and peer.state != CLOSED:
                self.on_readable(peer)

    def send(self, peer: P, data: bytes) -> None:
        """Write ``data`` now as far as the socket takes it; the rest waits in ``out`` for ``EVENT_WRITE``.

        Bytes already waiting keep ``data`` behind them, so the order is kept. A failed
        send goes to ``on_broken``.
        """
        sock = peer.sock
        assert sock is not None
        if peer.out:
            peer.out += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.on_broken(peer, "send", exc)
            return
        if sent < len(data):
            peer.out += data[sent:]
            self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)

    def on_writable(self, peer: P) -> None:
        """The connect completed (send the handshake, then read) or the socket takes more of ``out``."""
        sock = peer.sock
        assert sock is not None
        if peer.state == CONNECTING:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.on_connect_failed(peer, err)
                return
            peer.state = OPENING
            self.selector.modify(sock, selectors.EVENT_READ, peer)
            self.send(peer, self.handshake(peer))
            return
        try:
            sent = sock.send(peer.out)
        except BlockingIOError:
            return
        except OSError as exc:
            self.on_broken(peer, "send", exc)
            return
        del peer.out[:sent]
        if not peer.out:
            self.selector.modify(sock, selectors.EVENT_READ, peer)

    def on_readable(self, peer: P) -> None:
        """Read what arrived: the handshake's reply while ``OPENING``, then frames (see :meth:`read_frames`)."""
        sock = peer.sock
        assert sock is not None
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self.on_broken(peer, "recv", exc)
            return
        if not data:
            self.on_eof(peer)
            return
        self.on_data(peer, data)
        buf = peer.buf
        buf += data
        if peer.state == OPENING:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101 "):
                self.on_refused(peer, bytes(buf))
                return
            del buf[: end + 4]
            self.on_open(peer)
        self.read_frames(peer)

    def read_frames(self, peer: P) -> None:
        """Pass each whole frame in ``buf`` to ``on_frame``, until a partial one or the client is ``CLOSED``."""
        buf = peer.buf
        pos = 0
        end = len(buf)
        while end - pos >= 2 and peer.state != CLOSED:
            b0, b1 = _HEAD.unpack_from(buf, pos)
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                (n,) = _LENGTH_16.unpack_from(buf, pos + 2)
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                (n,) = _LENGTH_64.unpack_from(buf, pos + 2)
                head = 10
            if b1 & 0x80:
                self.on_masked_frame(peer)
                head += 4
            if end - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            self.on_frame(peer, b0, payload)
        del buf[:pos]

    def release(self, peer: P) -> None:
        """Set ``peer`` ``CLOSED``, unregister its socket (if it still is) and close it."""
        peer.state = CLOSED
        sock = peer.sock
        if sock is not None:
            try:
                self.selector.unregister(sock)
            except KeyError:
                pass
            sock.close()

    def close(self) -> None:
        """Close every registered socket and the selector (clients not yet connected hold none)."""
        for key in list(self.selector.get_map().values()):
            key.data.sock.close()
        self.selector.close()

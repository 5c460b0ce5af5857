"""toad.Connection against hostile or broken servers, over real sockets on 127.0.0.1.

Each test's server is a raw socket in a thread that plays a script: accept one
connection, read the client's request, then send what a good server would not
(nothing, a byte at a time, junk, a bad frame) and keep the socket open or drop
it. Each test checks one behaviour: the client never hangs, and it says clearly
what went wrong (``ConnectionFailed`` from ``open()``, or ``onerror``, then
``onclose`` with the close code).

Timeouts are short (``open_timeout`` and ``close_timeout`` of half a second) and
every wait has a deadline; pytest-timeout turns a hang into a failure.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Any

import pytest
import wire
from helpers import poll_until

import toad
from toad.handshake import accept_key

OPEN_TIMEOUT = 0.5
CLOSE_TIMEOUT = 0.5
WAIT = 5.0  # the longest any one wait may take before the test fails
SLACK = 1.5  # what a timer may overrun by on a busy machine (toad checks its timers every 0.25 s)

pytestmark = pytest.mark.timeout(30)  # a hang fails the test instead of the suite


# -- the hostile server -------------------------------------------------------------------


class Peer:
    """The hostile server's end of the one connection it accepted."""

    def __init__(self, sock: socket.socket, request: bytes, stop: threading.Event) -> None:
        self.sock = sock
        self.request = request
        self.key = wire.request_key(request)
        self.stop = stop
        self.buffer = b""
        #: Bytes the script managed to send, and the error that ended its sending (the client left).
        self.sent = 0
        self.send_error: OSError | None = None

    # -- writing (the script's thread, or the test's once the script is done) --

    def send(self, data: bytes) -> bool:
        """Send ``data``; ``False`` (the error kept in :attr:`send_error`) once the client is gone."""
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.send_error = exc
            return False
        self.sent += len(data)
        return True

    def accept(self, after: bytes = b"") -> None:
        """Send a correct 101, and ``after`` in the same write."""
        self.send(wire.response(self.key) + after)

    def trickle(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte every ``interval`` seconds, until done or the client leaves."""
        for i in range(len(data)):
            if self.stop.wait(interval) or not self.send(data[i : i + 1]):
                return

    def flood(self, chunk: bytes, limit: int = 64 << 20) -> None:
        """Send ``chunk`` again and again until the client leaves (or ``limit`` bytes went out)."""
        while self.sent < limit and not self.stop.is_set() and self.send(chunk):
            pass

    def fin(self) -> None:
        """Vanish politely: end the stream (FIN) without a Close frame."""
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Vanish rudely: a TCP reset (RST), without a Close frame."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # -- reading (the test's thread) --

    def recv_frame(self, timeout: float = WAIT) -> wire.WireFrame:
        """The next frame from the client; fails the test if none comes within ``timeout``."""
        deadline = monotonic() + timeout
        b0, b1 = self._recv_exactly(2, deadline)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._recv_exactly(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._recv_exactly(8, deadline))
        key = self._recv_exactly(4, deadline) if b1 & 0x80 else b""
        payload = self._recv_exactly(length, deadline)
        if key:
            payload = wire.mask_bytes(payload, key)
        return wire.WireFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, bool(key), payload)

    def _recv_exactly(self, n: int, deadline: float) -> bytes:
        while len(self.buffer) < n:
            self.sock.settimeout(max(0.001, deadline - monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the client sent no complete frame in time; got {self.buffer!r:.200}") from None
            if not chunk:
                raise AssertionError(f"the client closed the connection; got {self.buffer!r:.200}")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def at_eof(self, timeout: float = WAIT) -> bool:
        """Whether the client ends the TCP connection within ``timeout`` (what it sends is skipped)."""
        deadline = monotonic() + timeout
        while True:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except OSError:  # a reset: the client closed with bytes unread
                return True


Script = Callable[[Peer], object]


def hold(peer: Peer) -> None:
    """Say nothing: the socket stays open until the test ends."""


class HostileServer:
    """A one-connection server on 127.0.0.1 that plays ``script`` once the client's request arrived.

    When the script returns, the socket stays open (until the test ends) unless
    the script closed it. A script that raises fails the test at teardown.
    """

    def __init__(self, script: Script, *, rcvbuf: int | None = None) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # inherited by the accepted socket; set before listen() to shrink the window
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.done = threading.Event()
        self.peer: Peer | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, args=(script,), name="hostile-server", daemon=True)
        self.thread.start()

    def _serve(self, script: Script) -> None:
        try:
            sock = self._accept()
            if sock is None:
                return
            sock.settimeout(WAIT)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    raise AssertionError(f"the client left before its request was complete: {request!r}")
                request += chunk
            self.peer = Peer(sock, request, self.stop)
            self.ready.set()
            script(self.peer)
        except BaseException as exc:
            self.failure = exc
        finally:
            self.done.set()

    def _accept(self) -> socket.socket | None:
        self.listener.settimeout(0.05)
        deadline = monotonic() + WAIT
        while not self.stop.is_set():
            try:
                return self.listener.accept()[0]
            except TimeoutError:
                if monotonic() > deadline:
                    raise AssertionError("the client never connected") from None
        return None

    def wait_peer(self) -> Peer:
        assert self.ready.wait(WAIT), "the client's request never arrived"
        assert self.peer is not None
        return self.peer

    def wait_done(self) -> Peer:
        """The peer, once the script has finished (it must, within WAIT)."""
        assert self.done.wait(WAIT), "the server's script did not finish: the client kept the connection"
        return self.wait_peer()

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(WAIT)
        self.listener.close()
        if self.peer is not None:
            self.peer.sock.close()
        assert not self.thread.is_alive(), "the hostile server's thread did not end"
        if self.failure is not None:
            raise self.failure


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileServer]]:
    """Start a :class:`HostileServer` with a script; every one is shut down at teardown."""
    servers: list[HostileServer] = []

    def start(script: Script = hold, **options: Any) -> HostileServer:
        server = HostileServer(script, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


# -- the client -----------------------------------------------------------------------------


class Log:
    """A Connection's callbacks, in order, with the errors and ``close_code`` as ``onclose`` saw it."""

    def __init__(self, conn: toad.Connection) -> None:
        self.conn = conn
        self.events: list[str] = []
        self.errors: list[BaseException] = []
        self.messages: list[str | bytes] = []
        self.close_codes: list[int | None] = []
        conn.onopen(lambda: self.events.append("open"))
        conn.onmessage(self._message)
        conn.onerror(self._error)
        conn.onclose(self._close)

    def _message(self, message: str | bytes) -> None:
        self.events.append("message")
        self.messages.append(message)

    def _error(self, exc: BaseException) -> None:
        self.events.append("error")
        self.errors.append(exc)

    def _close(self) -> None:
        self.events.append("close")
        self.close_codes.append(self.conn.close_code)

    def until_closed(self) -> list[str]:
        poll_until(self.conn, lambda: "close" in self.events, WAIT, "onclose")
        return self.events


@pytest.fixture
def connect() -> Iterator[Callable[..., tuple[toad.Connection, Log]]]:
    """Open a toad.Connection with short timeouts (block=False unless told); closed at teardown."""
    connections: list[toad.Connection] = []

    def open_(url: str, *, block: bool = False, **options: Any) -> tuple[toad.Connection, Log]:
        options.setdefault("open_timeout", OPEN_TIMEOUT)
        options.setdefault("close_timeout", CLOSE_TIMEOUT)
        conn = toad.Connection(url, **options)
        log = Log(conn)
        connections.append(conn)
        conn.open(block=block)
        return conn, log

    yield open_
    for conn in connections:
        conn.close()
        assert conn.wait_closed(CLOSE_TIMEOUT + WAIT), "the connection's loop never ended"


def failed_open(url: str, **options: Any) -> tuple[toad.ConnectionFailed, float]:
    """Open ``url`` (block=False), which must raise ConnectionFailed; the error and how long it took."""
    options.setdefault("open_timeout", OPEN_TIMEOUT)
    conn = toad.Connection(url, **options)
    started = monotonic()
    with pytest.raises(toad.ConnectionFailed) as info:
        conn.open(block=False)
    elapsed = monotonic() - started
    assert not conn.isopen()
    return info.value, elapsed


def close_code(frame: wire.WireFrame) -> int:
    assert frame.opcode == wire.CLOSE, frame
    return int(struct.unpack("!H", frame.payload[:2])[0])


def server_frame(opcode: int, payload: bytes = b"", **kwargs: Any) -> bytes:
    """A frame as a server sends it: unmasked."""
    return wire.frame(opcode, payload, masked=False, **kwargs)


def http_response(status_line: str, body: bytes) -> bytes:
    head = f"{status_line}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


# -- the opening handshake: open() raises ConnectionFailed, never hangs ----------------------


def test_a_server_that_accepts_and_says_nothing_times_out(hostile: Callable[..., HostileServer]) -> None:
    server = hostile(hold)
    error, elapsed = failed_open(server.url)
    assert "timed out" in str(error)
    assert OPEN_TIMEOUT * 0.9 <= elapsed < OPEN_TIMEOUT + SLACK
    assert server.wait_peer().at_eof(), "the client did not close its socket"


def test_a_101_trickled_a_byte_at_a_time_times_out_overall(hostile: Callable[..., HostileServer]) -> None:
    # Every byte comes well within open_timeout, the whole 101 would take ~4 s:
    # open_timeout bounds the handshake, not the wait for each byte.
    interval = 0.03
    server = hostile(lambda peer: peer.trickle(wire.response(peer.key), interval))
    error, elapsed = failed_open(server.url)
    assert "timed out" in str(error)
    assert elapsed < OPEN_TIMEOUT + SLACK
    peer = server.wait_done()
    assert 5 <= peer.sent < len(wire.response(peer.key)), peer.sent
    assert peer.send_error is not None, "the client did not close its socket"


def test_an_endless_header_fails_fast_without_buffering_it(hostile: Callable[..., HostileServer]) -> None:
    # No blank line ever: the client gives up past its 8 KiB header limit, well
    # before open_timeout, and closes the socket instead of reading on.
    def endless(peer: Peer) -> None:
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
        peer.flood(b"X-Filler: " + b"a" * 1000 + b"\r\n")

    server = hostile(endless)
    error, elapsed = failed_open(server.url, open_timeout=WAIT)
    assert "sent an invalid WebSocket handshake response" in str(error)
    assert "the server's response header is too large" in str(error)
    assert isinstance(error.__cause__, toad.InvalidHandshake)
    assert elapsed < WAIT / 2
    peer = server.wait_done()
    assert peer.send_error is not None, f"the server could send {peer.sent} bytes: the client kept reading"


@pytest.mark.parametrize(
    ("status_line", "status", "body", "then_close"),
    [
        pytest.param("HTTP/1.1 404 Not Found", 404, b"no such game\n", True, id="404-then-close"),
        pytest.param("HTTP/1.1 500 Internal Server Error", 500, b"Traceback...\n" * 100, False, id="500-kept-open"),
        pytest.param("HTTP/1.1 403 Forbidden", 403, b"", False, id="403-no-body"),
        pytest.param("HTTP/1.0 200 OK", 200, b"<html>a web page</html>", True, id="http-1.0-200"),
    ],
)
def test_a_status_other_than_101_fails_naming_the_status(
    hostile: Callable[..., HostileServer], status_line: str, status: int, body: bytes, then_close: bool
) -> None:
    # Kept open, or with a body: the client answers on the head alone, without
    # waiting for the body or for the server to close.
    def refuse(peer: Peer) -> None:
        peer.send(http_response(status_line, body))
        if then_close:
            peer.fin()

    server = hostile(refuse)
    error, elapsed = failed_open(server.url, open_timeout=WAIT)
    assert "refused the WebSocket handshake" in str(error)
    assert f"HTTP {status}" in str(error)
    assert isinstance(error.__cause__, toad.InvalidHandshake)
    assert error.__cause__.status == status
    assert elapsed < WAIT / 2


@pytest.mark.parametrize(
    ("make_response", "complaint"),
    [
        pytest.param(
            lambda key: wire.response(key, drop=("Sec-WebSocket-Accept",), extra=(("Sec-WebSocket-Accept", "x"),)),
            "Sec-WebSocket-Accept does not match",
            id="garbled-accept",
        ),
        pytest.param(
            lambda key: wire.response(wire.KEY),  # right for the RFC's sample key, wrong for ours
            "Sec-WebSocket-Accept does not match",
            id="accept-for-another-key",
        ),
        pytest.param(lambda key: wire.response(key, drop=("Sec-WebSocket-Accept",)), "Accept", id="no-accept"),
        pytest.param(
            lambda key: wire.response(key, extra=(("Sec-WebSocket-Accept", accept_key(key)),)),
            "Sec-WebSocket-Accept",
            id="two-accepts",
        ),
        pytest.param(lambda key: wire.response(key, drop=("Upgrade",)), "Upgrade: websocket", id="no-upgrade"),
        pytest.param(lambda key: wire.response(key, drop=("Connection",)), "Connection: Upgrade", id="no-connection"),
        pytest.param(
            lambda key: wire.response(key, extra=(("Sec-WebSocket-Extensions", "permessage-deflate"),)),
            "extension",
            id="extension-not-offered",
        ),
        pytest.param(
            lambda key: wire.response(key, extra=(("Sec-WebSocket-Protocol", "chat"),)),
            "subprotocol",
            id="subprotocol-not-offered",
        ),
    ],
)
def test_a_101_that_does_not_prove_a_websocket_server_fails(
    hostile: Callable[..., HostileServer], make_response: Callable[[str], bytes], complaint: str
) -> None:
    # RFC 6455 section 4.1: the client MUST _Fail the WebSocket Connection_ on
    # any of these. The server keeps the socket open: the client must not wait.
    server = hostile(lambda peer: peer.send(make_response(peer.key)))
    error, elapsed = failed_open(server.url, open_timeout=WAIT)
    assert "sent an invalid WebSocket handshake response" in str(error)  # a 101 is no refusal
    assert complaint in str(error)
    assert isinstance(error.__cause__, toad.InvalidHandshake)
    assert elapsed < WAIT / 2
    assert server.wait_peer().at_eof(), "the client did not close its socket"


BINARY_JUNK = bytes(range(256))  # NUL, control bytes, high bytes; no CRLF anywhere


@pytest.mark.parametrize(
    ("junk", "then_close", "complaint"),
    [
        pytest.param(b"HTTP/1.0 garbage\r\n\r\n", False, "malformed status line", id="http-1.0-garbage"),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n",
            False,
            "malformed header",
            id="bad-header-line",
        ),
        pytest.param(BINARY_JUNK + b"\r\n\r\n", False, "malformed status line", id="binary-junk"),
        pytest.param(BINARY_JUNK * 64, False, "response header is too large", id="binary-junk-without-end"),
        pytest.param(b"\x15\x03\x01\x00\x02\x02\x46", True, "closed the connection", id="tls-alert-then-close"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", True, "closed the connection", id="ssh-banner-then-close"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", False, "timed out", id="ssh-banner-kept-open"),
    ],
)
def test_junk_instead_of_http_fails_clearly(
    hostile: Callable[..., HostileServer], junk: bytes, then_close: bool, complaint: str
) -> None:
    def answer(peer: Peer) -> None:
        peer.send(junk)
        if then_close:
            peer.fin()

    server = hostile(answer)
    error, elapsed = failed_open(server.url)
    assert complaint in str(error)
    assert "refused" not in str(error)  # the server never answered with an HTTP status
    assert elapsed < OPEN_TIMEOUT + SLACK


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("part", [0, 20], ids=["before-any-byte", "half-way"])
def test_closing_the_socket_mid_handshake_fails_at_once(
    hostile: Callable[..., HostileServer], how: str, part: int
) -> None:
    def vanish(peer: Peer) -> None:
        peer.send(wire.response(peer.key)[:part])
        getattr(peer, how)()

    server = hostile(vanish)
    error, elapsed = failed_open(server.url, open_timeout=WAIT)
    assert server.url.rstrip("/") in str(error)
    if how == "fin":
        assert "closed the connection during the opening handshake" in str(error)
    else:
        assert "failed" in str(error) or "closed the connection" in str(error)
    assert elapsed < WAIT / 2


# -- after a valid 101: a server that breaks the protocol ----------------------------------


def assert_failed(conn: toad.Connection, log: Log, peer: Peer, code: int, error_type: type[BaseException]) -> None:
    """The client failed the connection with ``code``: on the wire, in onerror, onclose and close_code."""
    close = peer.recv_frame()
    # RFC 6455 section 5.1: a client MUST mask every frame it sends, its Close frame too.
    assert close.masked
    assert close_code(close) == code
    assert log.until_closed() == ["open", "error", "close"]
    assert type(log.errors[0]) is error_type
    assert log.errors[0].close_code == code
    assert log.close_codes == [code]
    assert conn.close_code == code
    assert not conn.isopen()


@pytest.mark.parametrize("with_101", [False, True], ids=["after-the-101", "in-the-101s-write"])
def test_a_masked_frame_from_the_server_fails_with_1002(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]], with_101: bool
) -> None:
    # RFC 6455 section 5.1: a client MUST close the connection on a masked frame.
    masked = wire.frame(wire.TEXT, b"hello", masked=True)
    server = hostile(lambda peer: peer.accept(masked if with_101 else b""))
    conn, log = connect(server.url)
    peer = server.wait_done()
    if not with_101:
        peer.send(masked)
    assert_failed(conn, log, peer, 1002, toad.ProtocolError)
    assert "masked" in str(log.errors[0])
    peer.fin()  # the server closes the TCP connection first (section 7.1.1): the client's loop ends at once
    assert conn.wait_closed(WAIT)


P = toad.ProtocolError


@pytest.mark.parametrize(
    ("bad", "code", "error"),
    [
        # RFC 6455 sections 5.2-5.5: frames that break the framing rules (1002).
        pytest.param(server_frame(wire.TEXT, b"hi", rsv=4), 1002, P, id="rsv1"),
        pytest.param(server_frame(wire.TEXT, b"hi", rsv=2), 1002, P, id="rsv2"),
        pytest.param(server_frame(wire.PING, b"", rsv=1), 1002, P, id="rsv3-on-a-ping"),
        pytest.param(server_frame(0x3, b"hi"), 1002, P, id="unknown-data-opcode"),
        pytest.param(server_frame(0xB, b"hi"), 1002, P, id="unknown-control-opcode"),
        pytest.param(server_frame(wire.PING, b"", fin=False), 1002, P, id="fragmented-ping"),
        pytest.param(server_frame(wire.PING, b"x" * 126), 1002, P, id="ping-over-125-bytes"),
        pytest.param(server_frame(wire.CONT, b"hi"), 1002, P, id="continuation-of-nothing"),
        pytest.param(
            server_frame(wire.TEXT, b"a", fin=False) + server_frame(wire.TEXT, b"b"), 1002, P, id="interleaved"
        ),
        pytest.param(server_frame(wire.CLOSE, b"\x03"), 1002, P, id="one-byte-close"),
        pytest.param(server_frame(wire.CLOSE, wire.close_payload(1005)), 1002, P, id="close-code-1005"),
        pytest.param(server_frame(wire.CLOSE, wire.close_payload(999)), 1002, P, id="close-code-999"),
        pytest.param(bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big"), 1002, P, id="64-bit-length-msb"),
        # Section 8.1: invalid UTF-8 in a text message MUST fail the connection (1007).
        pytest.param(server_frame(wire.TEXT, b"\xff"), 1007, P, id="utf8-0xff"),
        pytest.param(server_frame(wire.TEXT, b"caf\xc3"), 1007, P, id="utf8-truncated"),
        pytest.param(server_frame(wire.TEXT, b"\xed\xa0\x80"), 1007, P, id="utf8-surrogate"),
        # The first fragment is enough: the rest never comes, the client must not wait for it.
        pytest.param(server_frame(wire.TEXT, b"ok \xff", fin=False), 1007, P, id="utf8-first-fragment"),
        pytest.param(server_frame(wire.CLOSE, wire.close_payload(1000, b"bye \xff")), 1007, P, id="utf8-close-reason"),
        # Over max_message_size (1000 here), known from the header alone (1009): only the
        # header is sent and the socket stays open, so a client that waited for the
        # payload would never send its Close frame.
        pytest.param(wire.header(wire.BINARY, 1001, masked=False), 1009, toad.MessageTooBig, id="16-bit-length"),
        pytest.param(wire.header(wire.TEXT, 1 << 40, masked=False), 1009, toad.MessageTooBig, id="64-bit-length"),
        pytest.param(
            server_frame(wire.BINARY, b"x" * 600, fin=False) + wire.header(wire.CONT, 401, masked=False),
            1009,
            toad.MessageTooBig,
            id="fragments-adding-up",
        ),
    ],
)
def test_a_frame_that_breaks_the_rules_fails_with_its_close_code(
    hostile: Callable[..., HostileServer],
    connect: Callable[..., tuple[toad.Connection, Log]],
    bad: bytes,
    code: int,
    error: type[toad.ProtocolError],
) -> None:
    server = hostile(lambda peer: peer.accept())
    conn, log = connect(server.url, max_message_size=1000)
    peer = server.wait_done()
    peer.send(bad)
    assert_failed(conn, log, peer, code, error)
    peer.fin()
    assert conn.wait_closed(WAIT)


# -- after a valid 101: a server that will not close, or vanishes -------------------------


def test_after_failing_the_client_closes_tcp_itself_if_the_server_never_does(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    # RFC 6455 section 7.1.1: the client waits for the server to close the TCP
    # connection, but not forever: close_timeout, then it closes it itself.
    server = hostile(lambda peer: peer.accept())
    conn, log = connect(server.url)
    peer = server.wait_done()
    peer.send(server_frame(0x3, b"?"))
    started = monotonic()
    assert close_code(peer.recv_frame()) == 1002
    assert peer.at_eof(CLOSE_TIMEOUT + SLACK), "the client kept the TCP connection open"
    assert monotonic() - started >= CLOSE_TIMEOUT * 0.8, "the client did not give the server its close_timeout"
    assert conn.wait_closed(WAIT)
    assert log.until_closed() == ["open", "error", "close"]


@pytest.mark.parametrize("block", [False, True], ids=["block-false", "block-true"])
def test_a_server_that_never_answers_our_close_is_dropped_with_1006(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]], block: bool
) -> None:
    server = hostile(lambda peer: peer.accept())
    started = monotonic()
    if block:
        # open() runs the connection on this thread: it must return after close_timeout.
        conn = toad.Connection(server.url, open_timeout=OPEN_TIMEOUT, close_timeout=CLOSE_TIMEOUT)
        log = Log(conn)
        conn.onopen(lambda: conn.close())
        conn.open(block=True)
    else:
        conn, log = connect(server.url)
        conn.close()
        assert conn.wait_closed(CLOSE_TIMEOUT + SLACK), "the client waited for the server's Close forever"
        poll_until(conn, lambda: "close" in log.events, WAIT, "onclose")
    elapsed = monotonic() - started
    assert CLOSE_TIMEOUT * 0.8 <= elapsed < CLOSE_TIMEOUT + SLACK
    close = server.wait_done().recv_frame()
    assert close.masked and close_code(close) == 1000
    assert log.events == ["open", "error", "close"]
    assert type(log.errors[0]) is toad.ConnectionLost
    assert "closing handshake timed out" in str(log.errors[0])
    assert conn.close_code == 1006 and log.close_codes == [1006]
    assert server.wait_peer().at_eof(), "the client did not close its socket"


def test_a_server_that_closes_but_keeps_tcp_open_is_left_after_close_timeout(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    server = hostile(lambda peer: peer.accept())
    conn, log = connect(server.url)
    peer = server.wait_done()
    peer.send(server_frame(wire.CLOSE, wire.close_payload(4001, b"game over")))
    echo = peer.recv_frame()
    assert echo.masked and close_code(echo) == 4001  # section 5.5.1: the client echoes the code
    assert log.until_closed() == ["open", "close"]  # a clean close: no error
    assert (conn.close_code, conn.close_reason) == (4001, "game over")
    assert peer.at_eof(CLOSE_TIMEOUT + SLACK), "the client kept the TCP connection open"
    assert conn.wait_closed(WAIT)


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_a_server_that_vanishes_mid_game_is_reported_as_lost(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]], how: str
) -> None:
    server = hostile(lambda peer: peer.accept(server_frame(wire.TEXT, b"your turn")))
    conn, log = connect(server.url)
    poll_until(conn, lambda: log.messages, WAIT, "the first message")
    getattr(server.wait_done(), how)()  # no Close frame
    assert log.until_closed() == ["open", "message", "error", "close"]
    assert log.messages == ["your turn"]
    assert type(log.errors[0]) is toad.ConnectionLost
    assert conn.close_code == 1006 and log.close_codes == [1006]
    assert conn.wait_closed(WAIT)
    assert not conn.isopen()
    assert conn.send("anyone there?") is False


def test_a_server_that_goes_silent_is_pinged_then_dropped(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    server = hostile(lambda peer: peer.accept())
    conn, log = connect(server.url, ping_interval=0.2, ping_timeout=0.3)
    ping = server.wait_done().recv_frame()
    assert (ping.opcode, ping.masked) == (wire.PING, True)
    assert log.until_closed() == ["open", "error", "close"]  # the server never answers
    assert type(log.errors[0]) is toad.ConnectionLost
    assert "ping" in str(log.errors[0])
    assert conn.close_code == 1006
    assert conn.wait_closed(WAIT)


def test_a_server_that_stops_reading_is_dropped_and_send_never_blocks(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    # The server reads nothing after its 101. The kernel's buffers fill, then
    # toad's write buffer; past max_write_buffer the client drops the connection.
    server = hostile(lambda peer: peer.accept(), rcvbuf=4096)
    conn, log = connect(server.url, max_write_buffer=256 << 10)
    server.wait_done()
    channel = conn._channel
    assert channel is not None
    message = b"m" * (64 << 10)
    slowest = 0.0
    accepted = 0
    deadline = monotonic() + WAIT
    while accepted < 4096 and monotonic() < deadline:  # 256 MiB: far more than any socket buffer
        started = monotonic()
        ok = conn.send(message)
        slowest = max(slowest, monotonic() - started)
        if not ok:
            break
        # True means toad took the message: not the one that passed the limit and was dropped with the peer.
        assert not channel.overflowed, "send() returned True for a message dropped with the connection"
        accepted += 1
    else:
        pytest.fail(f"send() still accepted messages after {accepted * len(message)} bytes nobody read")
    # A send() that waited for this peer would wait forever: any pause under
    # SLACK is the machine being busy, not toad blocking.
    assert slowest < SLACK, f"a send() took {slowest:.3f} s"
    assert log.until_closed() == ["open", "error", "close"]
    assert type(log.errors[0]) is toad.ConnectionLost
    assert "write buffer" in str(log.errors[0])
    assert conn.close_code == 1006
    assert conn.wait_closed(WAIT)
    assert server.wait_peer().at_eof(), "the client did not close its socket"


def test_a_server_that_floods_pings_but_never_reads_the_pongs_is_dropped(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    # Every Ping gets its Pong (RFC 6455 section 5.5.2); the Pongs nobody reads
    # count against max_write_buffer like the game's own messages.
    server = hostile(lambda peer: peer.accept(), rcvbuf=4096)
    conn, log = connect(server.url, max_write_buffer=64 << 10)
    peer = server.wait_done()
    peer.flood(server_frame(wire.PING, b"p" * 125) * 512)  # until the client leaves
    assert peer.send_error is not None, f"the client read {peer.sent} bytes of Pings and stayed"
    assert log.until_closed() == ["open", "error", "close"]
    assert type(log.errors[0]) is toad.ConnectionLost
    assert "write buffer" in str(log.errors[0])
    assert conn.close_code == 1006
    assert conn.wait_closed(WAIT)


def test_a_server_that_keeps_talking_but_never_answers_our_close_is_still_dropped(
    hostile: Callable[..., HostileServer], connect: Callable[..., tuple[toad.Connection, Log]]
) -> None:
    # Messages and Pings after our Close do not keep the closing connection alive.
    server = hostile(lambda peer: peer.accept())
    conn, log = connect(server.url)
    peer = server.wait_done()
    conn.close()
    started = monotonic()
    assert close_code(peer.recv_frame()) == 1000
    chatter = server_frame(wire.TEXT, b"still here") + server_frame(wire.PING, b"hello?")
    before = peer.sent
    while not conn.wait_closed(0.05):
        assert monotonic() - started < CLOSE_TIMEOUT + SLACK, "the chatter kept the closing connection alive"
        peer.send(chatter)
    assert monotonic() - started >= CLOSE_TIMEOUT * 0.8
    assert peer.sent > before  # it did chatter
    assert log.until_closed() == ["open", "error", "close"]  # no onmessage after the game's close()
    assert type(log.errors[0]) is toad.ConnectionLost
    assert conn.close_code == 1006

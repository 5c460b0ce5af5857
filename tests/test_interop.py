"""Interoperability: toad against a real, independent peer over real sockets on 127.0.0.1.

The peer is the ``websockets`` library (its sync API: a client in the test's
thread, a server in a thread of its own), then toad against itself: a
``toad.Connection`` and a ``toad.Server`` in one process, both with
``block=False`` and the test's own poll() loop, as a game would run them.

Every wait has a deadline and fails with what it waited for.
"""

from __future__ import annotations

import os
import queue
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import wire
from helpers import poll_until, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

import toad

TIMEOUT = 5.0
MiB = 1 << 20

# Texts with multi-byte UTF-8, bytes that are not UTF-8, and the empty message of each kind.
MESSAGES = [
    pytest.param("héllo, wörld ✓ 🐸", toad.Text, id="text"),
    pytest.param(b"\x00\x01\x80\xfe\xff", toad.Binary, id="binary"),
    pytest.param("", toad.Text, id="empty-text"),
    pytest.param(b"", toad.Binary, id="empty-binary"),
]

# Fragments of a binary message; the second one is longer than a 16-bit frame length.
BIG_BINARY = toad.Binary(b"\x00\x01" + b"\xff" * 70000 + b"end")

LARGE = [
    pytest.param(os.urandom(MiB + 12345), id="binary"),
    pytest.param("é🐸x" * (MiB // 7), id="text"),
]


class ServerLog:
    """A toad.Server's callbacks, recorded in order; ``echo`` sends every message back."""

    def __init__(self, server: toad.Server, *, echo: bool = True) -> None:
        self.server = server
        self.echo = echo
        self.opened: list[toad.Client] = []
        self.messages: list[tuple[toad.Client, Any]] = []
        self.errors: list[tuple[toad.Client, Exception]] = []
        self.closed: list[toad.Client] = []
        server.onopen(self.onopen)
        server.onmessage(self.onmessage)
        server.onerror(self.onerror)
        server.onclose(self.onclose)

    def onopen(self, client: toad.Client) -> None:
        self.opened.append(client)

    def onmessage(self, client: toad.Client, message: Any) -> None:
        self.messages.append((client, message))
        if self.echo:
            client.send(message)

    def onerror(self, client: toad.Client, exc: Exception) -> None:
        self.errors.append((client, exc))

    def onclose(self, client: toad.Client) -> None:
        self.closed.append(client)

    def until_open(self, count: int = 1) -> list[toad.Client]:
        poll_until(self.server, lambda: len(self.opened) >= count, TIMEOUT, f"{count} onopen call(s) on the server")
        return self.opened

    def until_message(self, count: int = 1) -> list[tuple[toad.Client, Any]]:
        poll_until(self.server, lambda: len(self.messages) >= count, TIMEOUT, f"{count} message(s) on the server")
        return self.messages

    def until_closed(self, count: int = 1) -> list[toad.Client]:
        poll_until(self.server, lambda: len(self.closed) >= count, TIMEOUT, f"{count} onclose call(s) on the server")
        return self.closed


class ConnectionLog:
    """A toad.Connection's callbacks, recorded in order."""

    def __init__(self, conn: toad.Connection) -> None:
        self.conn = conn
        self.events: list[str] = []
        self.messages: list[Any] = []
        self.errors: list[Exception] = []
        conn.onopen(lambda: self.events.append("open"))
        conn.onmessage(self.onmessage)
        conn.onerror(self.onerror)
        conn.onclose(lambda: self.events.append("close"))

    def onmessage(self, message: Any) -> None:
        self.events.append("message")
        self.messages.append(message)

    def onerror(self, exc: Exception) -> None:
        self.events.append("error")
        self.errors.append(exc)

    def until_message(self, count: int = 1) -> list[Any]:
        poll_until(self.conn, lambda: len(self.messages) >= count, TIMEOUT, f"{count} message(s) on the connection")
        return self.messages

    def until_closed(self) -> list[str]:
        poll_until(self.conn, lambda: "close" in self.events, TIMEOUT, "onclose on the connection")
        return self.events


def poll_all_until(endpoints: Iterable[toad.Server | toad.Connection], done: Any, what: str) -> None:
    """Poll every endpoint, like one game frame, until ``done()``; fail after TIMEOUT seconds."""
    endpoints = list(endpoints)

    def frame() -> Any:
        for endpoint in endpoints:
            endpoint.poll()
        return done()

    wait_until(frame, TIMEOUT, what)


def closed_by_peer(ws: Any) -> ConnectionClosed:
    """Wait for a websockets connection to be closed by its peer; the ConnectionClosed it raised."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            message = ws.recv(timeout=TIMEOUT)
            pytest.fail(f"expected the connection to close, got a message {message!r:.80}")
    return info.value


def send_tolerating_close(ws: Any, message: Any) -> None:
    """Send what the peer may refuse half-way (it closes the connection while we still write)."""
    try:
        ws.send(message)
    except (ConnectionClosed, OSError):
        pass


# -- toad.Server with the websockets client ------------------------------------------------


@pytest.mark.parametrize(("message", "kind"), MESSAGES)
def test_server_echo_to_websockets_client_keeps_the_frame_type(toad_server, ws_connect, message, kind):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    ws.send(message)
    (_, received), *_ = log.until_message()
    assert type(received) is kind
    assert received == message
    echoed = ws.recv(timeout=TIMEOUT)
    assert type(echoed) is type(message)
    assert echoed == message


def test_server_keeps_the_order_of_many_messages_from_websockets_client(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    sent = [f"move {i}" if i % 2 else f"move {i}".encode() for i in range(200)]
    for message in sent:
        ws.send(message)
    log.until_message(len(sent))
    assert [m for _, m in log.messages] == sent
    assert [ws.recv(timeout=TIMEOUT) for _ in sent] == sent


@pytest.mark.parametrize("message", LARGE)
def test_server_round_trips_a_large_message_with_websockets_client(toad_server, ws_connect, message):
    server = toad_server(max_message_size=4 * MiB)
    log = ServerLog(server)
    ws = ws_connect(server)
    ws.send(message)
    (_, received), *_ = log.until_message()
    assert received == message
    assert ws.recv(timeout=TIMEOUT) == message


@pytest.mark.parametrize("below", [1, 0], ids=["one-byte-under", "exactly-at"])
def test_server_accepts_a_message_at_its_default_size_limit(toad_server, ws_connect, below):
    server = toad_server()
    limit = server.max_message_size
    assert limit == MiB  # the documented default
    log = ServerLog(server)
    ws = ws_connect(server)
    message = os.urandom(limit - below)
    ws.send(message)
    (_, received), *_ = log.until_message()
    assert received == message
    assert ws.recv(timeout=TIMEOUT) == message
    assert log.errors == []


def test_server_closes_websockets_client_with_1009_for_a_message_over_the_limit(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    send_tolerating_close(ws, os.urandom(server.max_message_size + 1))
    closed = closed_by_peer(ws)
    assert closed.rcvd is not None, "websockets got no Close frame from toad"
    assert closed.rcvd.code == 1009
    (client,) = log.until_closed()
    assert client.close_code == 1009
    assert log.messages == []
    assert [type(exc) for _, exc in log.errors] == [toad.MessageTooBig]


def test_server_closes_with_1009_when_fragments_add_up_past_the_limit(toad_server, ws_connect):
    server = toad_server(max_message_size=10_000)
    log = ServerLog(server)
    ws = ws_connect(server)
    send_tolerating_close(ws, [b"x" * 4000, b"x" * 4000, b"x" * 4000])  # each fragment fits; the message does not
    closed = closed_by_peer(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009
    (client,) = log.until_closed()
    assert client.close_code == 1009
    assert log.messages == []


@pytest.mark.parametrize(
    ("fragments", "whole"),
    [
        pytest.param(["Hel", "lo, ", "wörld", " 🐸"], toad.Text("Hello, wörld 🐸"), id="text"),
        pytest.param([b"\x00\x01", b"", b"\xff" * 70000, b"end"], BIG_BINARY, id="binary"),
    ],
)
def test_server_reassembles_a_fragmented_message_from_websockets_client(toad_server, ws_connect, fragments, whole):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    ws.send(fragments)
    ws.send("after")
    log.until_message(2)
    (_, received), (_, after) = log.messages
    assert type(received) is type(whole)
    assert received == whole
    assert after == "after"
    assert ws.recv(timeout=TIMEOUT) == whole


def test_server_answers_a_ping_between_fragments_and_still_reassembles(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    pongs = []

    def fragments() -> Iterator[str]:
        yield "first half, "
        pongs.append(ws.ping(b"mid-message"))  # a control frame between two fragments (RFC 6455 5.4)
        yield "second half"

    ws.send(fragments())
    assert pongs[0].wait(TIMEOUT), "toad did not answer a Ping sent in the middle of a fragmented message"
    (_, received), *_ = log.until_message()
    assert received == "first half, second half"


def test_server_answers_pings_from_websockets_client_without_the_game_polling(toad_server, ws_connect):
    server = toad_server()
    ws = ws_connect(server)
    assert ws.ping(b"ping 1").wait(TIMEOUT)
    assert ws.ping().wait(TIMEOUT)


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4000, "game over")])
def test_websockets_client_close_code_and_reason_reach_the_server(toad_server, ws_connect, code, reason):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    (client,) = log.until_open()
    assert server.clients == [client]
    ws.close(code, reason)
    assert log.until_closed() == [client]
    assert (client.close_code, client.close_reason) == (code, reason)
    assert not client.is_open
    assert server.clients == []
    assert log.errors == []


def test_server_close_code_and_reason_reach_websockets_client(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    ws = ws_connect(server)
    (client,) = log.until_open()
    client.close(4001, "bye")
    closed = closed_by_peer(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4001, "bye")
    log.until_closed()
    assert client.close_code == 4001  # websockets echoes the code
    assert log.errors == []


def test_onmessage_returning_false_closes_websockets_client_with_1000(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server, echo=False)
    server.onmessage(lambda client, message: message != "quit")
    ws = ws_connect(server)
    ws.send("stay")
    ws.send("quit")
    log.until_closed()  # the callbacks run in poll(), on this thread
    closed = closed_by_peer(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1000
    assert [m for _, m in log.messages] == ["stay", "quit"]


def test_server_stop_closes_every_websockets_client_with_1001(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    sockets = [ws_connect(server) for _ in range(3)]
    log.until_open(3)
    server.stop()
    for ws in sockets:
        closed = closed_by_peer(ws)
        assert closed.rcvd is not None, "websockets got no Close frame from toad"
        assert closed.rcvd.code == 1001
    # stop() waits for the closing handshakes and runs onclose on this thread.
    assert sorted(c.id for c in log.closed) == sorted(c.id for c in log.opened)
    assert {c.close_code for c in log.closed} == {1001}
    assert server.clients == []
    assert not server.running


def test_server_broadcast_reaches_every_websockets_client(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server, echo=False)
    sockets = [ws_connect(server) for _ in range(3)]
    log.until_open(3)
    assert server.broadcast("tick 1") == 3
    assert server.broadcast(b"\x01\x02", exclude=log.opened[0]) == 2
    assert [ws.recv(timeout=TIMEOUT) for ws in sockets] == ["tick 1"] * 3
    assert [ws.recv(timeout=TIMEOUT) for ws in sockets[1:]] == [b"\x01\x02"] * 2


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["game.v2", "game.v1"], "game.v2"),
        (["game.v1"], "game.v1"),
        (["other", "game.v1"], "game.v1"),
        (["other"], None),
    ],
)
def test_server_negotiates_a_subprotocol_with_websockets_client(toad_server, ws_connect, offered, chosen):
    server = toad_server(subprotocols=["game.v2", "game.v1"])
    log = ServerLog(server)
    ws = ws_connect(server, subprotocols=offered)
    assert ws.subprotocol == chosen
    (client,) = log.until_open()
    assert client.subprotocol == chosen


def test_server_sees_the_websockets_client_path_and_headers(toad_server, ws_connect):
    server = toad_server()
    log = ServerLog(server)
    ws_connect(server, path="/lobby?room=7", additional_headers={"X-Player": "frog"})
    (client,) = log.until_open()
    assert client.path == "/lobby?room=7"
    assert client.headers["X-Player"] == "frog"


# -- toad.Connection with the websockets server --------------------------------------------


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.mark.parametrize(("message", "kind"), MESSAGES)
def test_connection_echo_with_websockets_server_keeps_the_frame_type(ws_server, toad_connect, message, kind):
    conn = toad_connect(ws_server(echo))
    log = ConnectionLog(conn)
    assert conn.send(message)
    (received,) = log.until_message()
    assert type(received) is kind
    assert received == message
    assert log.events == ["open", "message"]


def test_connection_messages_polling_with_websockets_server(ws_server, toad_connect):
    conn = toad_connect(ws_server(echo))
    sent = [f"move {i}" if i % 2 else f"move {i}".encode() for i in range(100)]
    for message in sent:
        conn.send(message)
    received: list[Any] = []
    wait_until(lambda: received.extend(conn.messages()) or len(received) >= len(sent), TIMEOUT, "100 echoes")
    assert received == sent
    assert [type(m) for m in received] == [toad.Binary if isinstance(m, bytes) else toad.Text for m in sent]


@pytest.mark.parametrize("message", LARGE)
def test_connection_round_trips_a_large_message_with_websockets_server(ws_server, toad_connect, message):
    conn = toad_connect(ws_server(echo), max_message_size=4 * MiB)
    log = ConnectionLog(conn)
    conn.send(message)
    (received,) = log.until_message()
    assert received == message


def test_connection_accepts_a_message_exactly_at_its_default_limit(ws_server, toad_connect):
    message = os.urandom(MiB)

    def handler(ws: ServerConnection) -> None:
        ws.send(message)
        ws.recv()

    conn = toad_connect(ws_server(handler))
    assert conn.max_message_size == MiB
    log = ConnectionLog(conn)
    (received,) = log.until_message()
    assert received == message
    assert log.errors == []


def test_connection_closes_with_1009_for_a_message_over_its_limit(ws_server, toad_connect):
    seen: queue.Queue[Any] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        send_tolerating_close(ws, b"x" * (MiB + 1))
        try:
            ws.recv(timeout=TIMEOUT)
        except ConnectionClosed as exc:
            seen.put(exc.rcvd.code if exc.rcvd else None)

    conn = toad_connect(ws_server(handler))
    log = ConnectionLog(conn)
    log.until_closed()
    assert conn.close_code == 1009
    assert log.messages == []
    assert [type(exc) for exc in log.errors] == [toad.MessageTooBig]
    assert seen.get(timeout=TIMEOUT) == 1009


@pytest.mark.parametrize(
    ("fragments", "whole"),
    [
        pytest.param(["Hel", "lo, ", "wörld", " 🐸"], toad.Text("Hello, wörld 🐸"), id="text"),
        pytest.param([b"\x00\x01", b"\xff" * 70000, b"end"], BIG_BINARY, id="binary"),
    ],
)
def test_connection_reassembles_a_fragmented_message_from_websockets_server(ws_server, toad_connect, fragments, whole):
    pong: queue.Queue[bool] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        def pieces() -> Iterator[Any]:
            yield fragments[0]
            waiter = ws.ping(b"mid-message")  # a control frame between two fragments
            yield from fragments[1:]
            pong.put(waiter.wait(TIMEOUT))

        ws.send(pieces())
        ws.send("after")
        ws.recv()

    conn = toad_connect(ws_server(handler))
    log = ConnectionLog(conn)
    received, after = log.until_message(2)
    assert type(received) is type(whole)
    assert received == whole
    assert after == "after"
    assert pong.get(timeout=TIMEOUT) is True


def test_websockets_server_close_code_and_reason_reach_the_connection(ws_server, toad_connect):
    def handler(ws: ServerConnection) -> None:
        ws.send("last words")
        ws.close(4002, "round over")

    conn = toad_connect(ws_server(handler))
    log = ConnectionLog(conn)
    assert log.until_closed() == ["open", "message", "close"]
    assert log.messages == ["last words"]
    assert (conn.close_code, conn.close_reason) == (4002, "round over")
    assert not conn.isopen()
    assert conn.wait_closed(TIMEOUT)
    assert conn.send("too late") is False


def test_connection_close_code_and_reason_reach_websockets_server(ws_server, toad_connect):
    seen: queue.Queue[Any] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        try:
            ws.recv()
        except ConnectionClosed as exc:
            seen.put((exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else None)

    conn = toad_connect(ws_server(handler))
    log = ConnectionLog(conn)
    poll_until(conn, lambda: log.events == ["open"], TIMEOUT, "onopen")
    conn.close(4003, "quit")
    assert seen.get(timeout=TIMEOUT) == (4003, "quit")
    assert conn.wait_closed(TIMEOUT)
    log.until_closed()
    assert conn.close_code == 4003
    assert log.errors == []


def test_onmessage_returning_false_closes_the_connection_with_1000(ws_server, toad_connect):
    seen: queue.Queue[Any] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        try:
            ws.send("hello")
            ws.send("stop")
            ws.send("never read")  # toad may close before this goes out
            ws.recv()
        except ConnectionClosed as exc:
            seen.put(exc.rcvd.code if exc.rcvd else None)

    conn = toad_connect(ws_server(handler))
    log = ConnectionLog(conn)
    conn.onmessage(lambda message: message != "stop")
    log.until_closed()
    assert log.messages == ["hello", "stop"]
    assert conn.close_code == 1000
    assert seen.get(timeout=TIMEOUT) == 1000


def test_connection_answers_a_ping_from_websockets_server_without_polling(ws_server, toad_connect):
    answered: queue.Queue[bool] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        answered.put(ws.ping(b"are you there").wait(TIMEOUT))
        answered.put(ws.ping().wait(TIMEOUT))
        ws.recv()

    toad_connect(ws_server(handler))  # the game never polls: the network thread answers on its own
    assert answered.get(timeout=TIMEOUT) is True
    assert answered.get(timeout=TIMEOUT) is True


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["game.v1", "game.v2"], "game.v2"),  # websockets picks by its own order
        (["game.v1"], "game.v1"),
    ],
)
def test_connection_negotiates_a_subprotocol_with_websockets_server(ws_server, toad_connect, offered, chosen):
    seen: queue.Queue[Any] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        seen.put(ws.subprotocol)
        ws.recv()

    conn = toad_connect(ws_server(handler, subprotocols=["game.v2", "game.v1"]), subprotocols=offered)
    assert conn.subprotocol == chosen
    assert seen.get(timeout=TIMEOUT) == chosen


def test_connection_open_fails_when_websockets_server_refuses_the_subprotocols(ws_server):
    url = ws_server(echo, subprotocols=["game.v2"])
    conn = toad.Connection(url, subprotocols=["chess"])
    with pytest.raises(toad.ConnectionFailed, match="400"):
        conn.open(block=False)
    assert not conn.isopen()


def test_connection_sends_its_path_and_headers_to_websockets_server(ws_server, toad_connect):
    seen: queue.Queue[Any] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        seen.put((ws.request.path, ws.request.headers.get("X-Player"), ws.request.headers.get("Origin")))
        ws.recv()

    url = ws_server(handler) + "lobby?room=7"
    toad_connect(url, headers=[("X-Player", "frog")], origin="http://game.example")
    assert seen.get(timeout=TIMEOUT) == ("/lobby?room=7", "frog", "http://game.example")


def test_a_stopped_server_port_takes_a_new_server_at_once(toad_server, ws_connect):
    first = toad_server()
    ws = ws_connect(first)
    poll_until(first, lambda: first.clients, TIMEOUT, "the client on the first server")
    first.stop()
    assert closed_by_peer(ws).rcvd.code == 1001
    second = toad.Server()
    second.start("127.0.0.1", first.port, block=False)
    try:
        log = ServerLog(second)
        again = ws_connect(second)
        again.send("hi again")
        log.until_message()
        assert again.recv(timeout=TIMEOUT) == "hi again"
    finally:
        second.stop()


# -- toad.Connection with toad.Server, in one process ------------------------------------


@pytest.fixture
def pair(toad_server, toad_connect):
    """A toad server (echoing) and one toad connection to it, both open and both polled once."""
    server = toad_server()
    server_log = ServerLog(server)
    conn = toad_connect(f"ws://127.0.0.1:{server.port}/")
    conn_log = ConnectionLog(conn)
    poll_all_until([server, conn], lambda: server_log.opened and conn_log.events, "onopen on both sides")
    return server, server_log, conn, conn_log


@pytest.mark.parametrize(("message", "kind"), MESSAGES)
def test_toad_to_toad_echo_keeps_the_frame_type(pair, message, kind):
    server, server_log, conn, conn_log = pair
    assert conn.send(message)
    poll_all_until([server, conn], lambda: conn_log.messages, "the echo")
    ((client, at_server),) = server_log.messages
    assert client is server_log.opened[0]
    assert type(at_server) is kind and at_server == message
    (echoed,) = conn_log.messages
    assert type(echoed) is kind and echoed == message
    assert conn_log.events == ["open", "message"]


def test_toad_to_toad_large_message_at_the_limit(pair):
    server, server_log, conn, conn_log = pair
    message = os.urandom(MiB)
    conn.send(message)
    poll_all_until([server, conn], lambda: conn_log.messages, "the 1 MiB echo")
    assert conn_log.messages == [message]
    assert server_log.errors == [] and conn_log.errors == []


def test_toad_to_toad_message_over_the_limit_closes_with_1009(pair):
    server, server_log, conn, conn_log = pair
    conn.send(b"x" * (MiB + 1))
    poll_all_until([server, conn], lambda: server_log.closed and "close" in conn_log.events, "onclose on both sides")
    assert server_log.closed[0].close_code == 1009
    assert [type(exc) for _, exc in server_log.errors] == [toad.MessageTooBig]
    assert conn.close_code == 1009


def test_toad_to_toad_many_messages_in_order_with_polling_lists(pair):
    server, _, conn, _ = pair
    sent = [f"{i}" if i % 3 else f"{i}".encode() for i in range(300)]
    for message in sent:
        conn.send(message)
    at_server: list[Any] = []
    at_client: list[Any] = []

    def frame() -> bool:
        at_server.extend(m for _, m in server.messages())
        at_client.extend(conn.messages())
        return len(at_client) >= len(sent)

    wait_until(frame, TIMEOUT, "300 echoes")
    assert at_server == sent
    assert at_client == sent


def test_toad_to_toad_client_close_code_reaches_the_server(pair):
    server, server_log, conn, conn_log = pair
    conn.close(4005, "rage quit")
    poll_all_until([server, conn], lambda: server_log.closed and "close" in conn_log.events, "onclose on both sides")
    (client,) = server_log.closed
    assert (client.close_code, client.close_reason) == (4005, "rage quit")
    assert conn.close_code == 4005
    assert server.clients == []
    assert conn.wait_closed(TIMEOUT)
    assert server_log.errors == [] and conn_log.errors == []


def test_toad_to_toad_server_close_code_reaches_the_client(pair):
    server, server_log, conn, conn_log = pair
    server_log.opened[0].close(4006, "kicked")
    poll_all_until([server, conn], lambda: server_log.closed and "close" in conn_log.events, "onclose on both sides")
    assert (conn.close_code, conn.close_reason) == (4006, "kicked")
    assert server_log.closed[0].close_code == 4006
    assert not conn.isopen()
    assert conn.wait_closed(TIMEOUT)
    assert server_log.errors == [] and conn_log.errors == []


def test_toad_to_toad_server_stop_closes_the_client_with_1001(pair):
    server, server_log, conn, conn_log = pair
    server.stop()
    assert server_log.closed[0].close_code == 1001
    conn_log.until_closed()
    assert conn.close_code == 1001
    assert conn.wait_closed(TIMEOUT)
    assert conn_log.errors == []


def test_toad_to_toad_broadcast_to_several_connections(toad_server, toad_connect):
    server = toad_server()
    server_log = ServerLog(server, echo=False)
    conns = [toad_connect(f"ws://127.0.0.1:{server.port}/") for _ in range(3)]
    server_log.until_open(3)
    assert server.broadcast("go!") == 3
    received: list[list[Any]] = [[] for _ in conns]

    def frame() -> bool:
        for got, conn in zip(received, conns, strict=True):
            got.extend(conn.messages())
        return all(received)

    wait_until(frame, TIMEOUT, "the broadcast on every connection")
    assert received == [["go!"]] * 3


def test_toad_to_toad_subprotocol(toad_server, toad_connect):
    server = toad_server(subprotocols=["game.v2", "game.v1"])
    server_log = ServerLog(server)
    conn = toad_connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["game.v1"])
    assert conn.subprotocol == "game.v1"
    (client,) = server_log.until_open()
    assert client.subprotocol == "game.v1"


# -- toad.Connection with a server that sends frames in the same write as its 101 ----------
#
# websockets writes its 101 and its first frames separately, so whether they reach
# toad in one recv() is up to timing; this hand-written server makes it certain.


@pytest.fixture
def eager_server() -> Iterator[Any]:
    """A one-connection server: its 101 and ``after`` in one write; then it reads the client's frames.

    ``start(after, until)`` returns the URL and a queue that gets the frames the
    client sent once one with opcode ``until`` arrived (the server then closes the
    TCP connection first, as RFC 6455 section 7.1.1 has it).
    """
    threads: list[threading.Thread] = []

    def start(after: bytes, until: int) -> tuple[str, queue.Queue[list[wire.WireFrame]]]:
        listener = socket.create_server(("127.0.0.1", 0))
        frames: queue.Queue[list[wire.WireFrame]] = queue.Queue()

        def serve() -> None:
            with listener:
                listener.settimeout(TIMEOUT)
                sock, _ = listener.accept()
            with sock:
                sock.settimeout(TIMEOUT)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(4096)
                sock.sendall(wire.response(wire.request_key(head)) + after)
                data = b""
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    data += chunk
                    try:
                        got = wire.read_frames(data)
                    except (AssertionError, IndexError, struct.error):
                        continue  # a frame is still on its way
                    if any(f.opcode == until for f in got):
                        frames.put(got)
                        return

        thread = threading.Thread(target=serve, name="eager-server", daemon=True)
        thread.start()
        threads.append(thread)
        return f"ws://127.0.0.1:{listener.getsockname()[1]}/", frames

    yield start
    for thread in threads:
        thread.join(TIMEOUT)


def test_connection_delivers_messages_sent_with_the_101(eager_server, toad_connect):
    after = wire.frame(wire.TEXT, b"welcome", masked=False) + wire.frame(wire.BINARY, b"\x00map", masked=False)
    url, _ = eager_server(after, until=wire.CLOSE)
    conn = toad_connect(url)
    log = ConnectionLog(conn)
    assert log.until_message(2) == ["welcome", b"\x00map"]
    assert log.events == ["open", "message", "message"]


def test_connection_answers_a_ping_sent_with_the_101_without_polling(eager_server, toad_connect):
    url, frames = eager_server(wire.frame(wire.PING, b"hello?", masked=False), until=wire.PONG)
    toad_connect(url)
    (pong,) = frames.get(timeout=TIMEOUT)
    assert (pong.opcode, pong.masked, pong.payload) == (wire.PONG, True, b"hello?")


def test_connection_opens_then_closes_on_a_close_sent_with_the_101(eager_server, toad_connect):
    close = wire.frame(wire.CLOSE, wire.close_payload(4009, b"server full"), masked=False)
    url, frames = eager_server(close, until=wire.CLOSE)
    conn = toad_connect(url)  # the handshake succeeded: open() must not raise
    log = ConnectionLog(conn)
    assert log.until_closed() == ["open", "close"]
    assert (conn.close_code, conn.close_reason) == (4009, "server full")
    (echo,) = frames.get(timeout=TIMEOUT)
    assert echo.opcode == wire.CLOSE and echo.payload[:2] == (4009).to_bytes(2, "big")
    assert conn.wait_closed(TIMEOUT)


def test_connection_fails_with_1009_on_an_oversized_frame_sent_with_the_101(eager_server, toad_connect):
    too_big = wire.header(wire.BINARY, MiB + 1, masked=False) + b"x" * 1000  # the header alone is enough
    url, frames = eager_server(too_big, until=wire.CLOSE)
    conn = toad_connect(url)
    log = ConnectionLog(conn)
    assert log.until_closed() == ["open", "error", "close"]
    assert type(log.errors[0]) is toad.MessageTooBig
    assert conn.close_code == 1009
    (close,) = frames.get(timeout=TIMEOUT)
    assert close.opcode == wire.CLOSE and close.payload[:2] == (1009).to_bytes(2, "big")

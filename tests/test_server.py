"""toad.Server over real sockets: the seed's semantics, and what a game needs beyond them."""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import RawClient, frame, poll_until, running_server, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

import toad
import toad.server


def url(server: toad.Server) -> str:
    return f"ws://127.0.0.1:{server.port}"


def open_peer(address: str) -> ClientConnection:
    """A websockets client that the test closes by hand (not in a with block)."""
    return connect(address).__enter__()


def test_several_onopen_callbacks_run_in_the_order_added() -> None:
    order: list[str] = []
    with running_server() as server:
        server.onopen(lambda client: order.append("first"))
        server.onopen(lambda client: order.append("second"))
        server.onopen(lambda client: order.append("third"))
        with connect(url(server)):
            poll_until(server, lambda: len(order) == 3)
    assert order == ["first", "second", "third"]


def test_onopen_return_value_replaces_the_client_in_later_callbacks() -> None:
    class Player:
        def __init__(self, client: toad.Client) -> None:
            self.client = client

    seen: dict[str, object] = {}
    with running_server() as server:

        @server.onopen
        def make_player(client: toad.Client) -> Player:
            return Player(client)

        @server.onopen
        def second_onopen(player: object) -> None:
            seen["open"] = player

        @server.onmessage
        def on_message(player: object, message: str) -> None:
            seen["message"] = player

        @server.onclose
        def on_close(player: object) -> None:
            seen["close"] = player

        with connect(url(server)) as ws:
            ws.send("hi")
            poll_until(server, lambda: "message" in seen)
        poll_until(server, lambda: "close" in seen)
    player = seen["open"]
    assert isinstance(player, Player)
    assert seen["message"] is player and seen["close"] is player


def test_polling_results_carry_the_player_too() -> None:
    with running_server() as server:
        server.onopen(lambda client: ("player", client.id))
        with connect(url(server)) as ws:
            opens = poll_until(server, server.opens)
            ws.send("move")
            messages = poll_until(server, server.messages)
        closes = poll_until(server, server.closes)
    assert opens[0][0] == "player"
    assert messages == [(opens[0], "move")]
    assert closes == [opens[0]]


def test_setting_client_player_hands_the_connection_to_another_player() -> None:
    """A player who comes back on a new connection takes over: callbacks, client_of and broadcast follow."""

    class Player:
        pass

    first, returning = Player(), Player()
    seen: list[object] = []
    with running_server() as server:
        server.onopen(lambda client: first)

        @server.onmessage
        def on_message(player: object, message: str | bytes) -> None:
            seen.append(player)
            if message == "i am back":
                server.client_of(player).player = returning  # type: ignore[union-attr]

        with connect(url(server)) as ws:
            ws.send("i am back")
            ws.send("move")
            poll_until(server, lambda: len(seen) == 2)
            assert server.client_of(first) is None
            client = server.client_of(returning)
            assert client is not None and client.player is returning
            assert server.players == [returning]
            assert server.broadcast("hello", to=[returning]) == 1
            assert ws.recv(timeout=5) == "hello"
    assert seen == [first, returning]


def test_a_connection_that_closes_after_its_player_was_taken_over_leaves_the_new_one_alone() -> None:
    class Player:
        pass

    player = Player()
    with running_server() as server:
        server.onopen(lambda client: player if server.client_of(player) is None else None)

        @server.onmessage
        def on_message(who: object, message: str | bytes) -> None:
            if message == "i am back":
                server.client_of(who).player = player  # type: ignore[union-attr]

        old = open_peer(url(server))
        first = poll_until(server, lambda: server.client_of(player))
        with connect(url(server)) as new:
            new.send("i am back")
            taken = poll_until(
                server, lambda: server.client_of(player) not in (None, first) and server.client_of(player)
            )
            old.close()  # the old connection still speaks for the player when it closes
            poll_until(server, lambda: len(server.clients) == 1)
            assert server.client_of(player) is taken
            assert server.broadcast("still here", to=[player]) == 1
            assert new.recv(timeout=5) == "still here"


def test_returning_false_from_onmessage_closes_the_connection() -> None:
    with running_server() as server:
        server.onmessage(lambda client, message: message != "bye" and None)
        with connect(url(server)) as ws:
            ws.send("bye")
            assert recv_until_closed(server, ws) == 1000


def test_client_ids_are_unique() -> None:
    with running_server() as server:
        peers = [open_peer(url(server)) for _ in range(5)]
        opened = []
        poll_until(server, lambda: opened.extend(server.opens()) or len(opened) == 5)
        for ws in peers:
            ws.close()
    assert len({client.id for client in opened}) == 5


def test_messages_are_str_or_bytes_by_frame_type_and_have_contains() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            ws.send("a yellow flag")
            ws.send(b"\x00blue\xff")
            got = []
            poll_until(server, lambda: got.extend(server.messages()) or len(got) == 2)
    (_, text), (_, data) = got
    assert isinstance(text, str) and isinstance(text, toad.Text)
    assert isinstance(data, bytes) and isinstance(data, toad.Binary)
    assert text.contains("yellow") and not text.contains("blue")
    assert data.contains("blue") and data.contains(b"\xff")


def test_client_send_keeps_the_frame_type() -> None:
    with running_server() as server:
        server.onmessage(lambda client, message: client.send(message))
        with connect(url(server)) as ws:
            ws.send("text")
            poll_until(server, lambda: True)
            assert wait_recv(server, ws) == "text"
            ws.send(b"bytes")
            assert wait_recv(server, ws) == b"bytes"


def wait_recv(server: toad.Server, ws: object, timeout: float = 10.0) -> str | bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.poll()
        try:
            return ws.recv(timeout=0.02)  # type: ignore[attr-defined]
        except TimeoutError:
            continue
    raise AssertionError("no message arrived")


def recv_until_closed(server: toad.Server, ws: object, timeout: float = 10.0) -> int | None:
    """Poll the server and read the websockets client until it is closed; its close code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.poll()
        try:
            ws.recv(timeout=0.02)  # type: ignore[attr-defined]
        except TimeoutError:
            continue
        except ConnectionClosed:
            return ws.close_code  # type: ignore[attr-defined]
    raise AssertionError("the connection was not closed")


def test_stop_closes_every_connection_with_1001_and_returns() -> None:
    server = toad.Server()
    server.start("127.0.0.1", 0, block=False)
    closed: list[int | None] = []
    server.onclose(lambda client: closed.append(client.close_code))
    peers = [open_peer(url(server)) for _ in range(3)]
    poll_until(server, lambda: len(server.clients) == 3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert not server.running
    # onclose ran for everyone before stop() returned, on this thread.
    assert closed == [1001, 1001, 1001]
    for ws in peers:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1001


def test_the_port_is_free_again_right_after_stop() -> None:
    server = toad.Server()
    server.start("127.0.0.1", 0, block=False)
    port = server.port
    with connect(f"ws://127.0.0.1:{port}"):
        poll_until(server, lambda: server.clients)
        server.stop()
    again = toad.Server()
    again.start("127.0.0.1", port, block=False)
    try:
        assert again.port == port
    finally:
        again.stop()


def test_block_true_returns_when_a_callback_stops_the_server() -> None:
    server = toad.Server()
    ready = threading.Event()
    thread_ids: list[int] = []
    port_holder: list[int] = []

    @server.onmessage
    def on_message(client: toad.Client, message: str) -> None:
        thread_ids.append(threading.get_ident())
        server.stop()

    def client() -> None:
        ready.wait(10)
        with connect(f"ws://127.0.0.1:{port_holder[0]}") as ws:
            ws.send("stop")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)

    # Find a free port first, since start(block=True) does not return until stopped.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port_holder.append(probe.getsockname()[1])
    peer = threading.Thread(target=client)
    peer.start()
    timer = threading.Timer(0.2, ready.set)
    timer.start()
    server.start("127.0.0.1", port_holder[0], block=True)
    peer.join(10)
    assert thread_ids == [threading.get_ident()]  # callbacks ran on the blocking caller's thread
    assert not server.running


def test_block_true_returns_when_another_thread_stops_the_server() -> None:
    server = toad.Server()
    threading.Timer(0.3, server.stop).start()
    started = time.monotonic()
    server.start("127.0.0.1", 0, block=True)
    assert time.monotonic() - started < 5
    assert not server.running


def test_block_false_runs_callbacks_only_in_poll_on_the_calling_thread() -> None:
    calls: list[int] = []
    with running_server() as server:
        server.onopen(lambda client: calls.append(threading.get_ident()))
        with connect(url(server)):
            wait_until(lambda: server._queue, what="the open event to be queued")
            assert calls == []  # queued, but nothing ran behind the game's back
            server.poll()
    assert calls == [threading.get_ident()]


def test_poll_returns_events_in_order_and_respects_the_limit() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            for i in range(5):
                ws.send(str(i))
            wait_until(lambda: len(server._queue) >= 6, what="six events")
            first = server.poll(limit=2)
            rest = server.poll()
    assert [e.type for e in first] == ["open", "message"]
    assert [e.data for e in rest] == ["1", "2", "3", "4"]
    assert all(e.source is server for e in first + rest)


def test_opens_then_messages_read_one_consistent_batch() -> None:
    # A client that connects and talks between the two calls is not seen
    # talking before it is seen arriving.
    with running_server() as server:
        assert server.opens() == []
        with connect(url(server)) as ws:
            ws.send("hello")
            wait_until(lambda: len(server._queue) >= 2, what="open and message")
            assert server.messages() == []  # this batch had neither
            opened = server.opens()
            assert len(opened) == 1
            assert server.messages() == [(opened[0], "hello")]


def test_clients_lists_open_clients_and_forgets_those_who_left() -> None:
    with running_server() as server:
        a = open_peer(url(server))
        b = open_peer(url(server))
        poll_until(server, lambda: len(server.clients) == 2)
        a.close()
        poll_until(server, lambda: len(server.clients) == 1)
        b.close()
        poll_until(server, lambda: not server.clients)


def test_broadcast_reaches_everyone_and_encodes_the_frame_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = toad.server.encode_message
    monkeypatch.setattr(toad.server, "encode_message", lambda *a, **k: calls.append(a) or real(*a, **k))
    with running_server() as server:
        peers = [open_peer(url(server)) for _ in range(4)]
        poll_until(server, lambda: len(server.clients) == 4)
        assert server.broadcast("state 1") == 4
        assert [ws.recv(timeout=5) for ws in peers] == ["state 1"] * 4
        for ws in peers:
            ws.close()
    assert len(calls) == 1


def test_broadcast_to_a_group_and_with_exclusions() -> None:
    with running_server() as server:
        server.onopen(lambda client: {"client": client})  # players that are plain dicts
        peers = [open_peer(url(server)) for _ in range(3)]
        poll_until(server, lambda: len(server.clients) == 3)
        for ws in peers:
            ws.send("who")
        got: list = []
        poll_until(server, lambda: got.extend(server.messages()) or len(got) == 3)
        players = [player for player, _ in got]
        assert server.broadcast("to two", to=players[:2]) == 2
        assert server.broadcast(b"all but one", exclude=players[0]) == 2
        received = []
        for ws in peers:
            mine = []
            try:
                while True:
                    mine.append(ws.recv(timeout=0.3))
            except TimeoutError:
                pass
            received.append(mine)
            ws.close()
    assert sorted(map(len, received)) == [1, 1, 2]
    assert sum(r.count("to two") for r in received) == 2
    assert sum(r.count(b"all but one") for r in received) == 2


def test_close_code_and_reason_are_visible_after_close() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            poll_until(server, lambda: server.clients)
            ws.close(4002, "rage quit")
        (client,) = poll_until(server, server.closes)
    assert client.close_code == 4002
    assert client.close_reason == "rage quit"
    assert not client.is_open


def test_client_close_sends_code_and_reason_to_the_peer() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            (client,) = poll_until(server, server.opens)
            client.close(4005, "kicked")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
            assert (ws.close_code, ws.close_reason) == (4005, "kicked")
        poll_until(server, server.closes)
    assert client.close_code == 4005


def test_send_after_close_returns_false_instead_of_raising() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            (client,) = poll_until(server, server.opens)
            ws.close()
        poll_until(server, server.closes)
        assert client.send("too late") is False


def test_a_raising_callback_goes_to_onerror_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[tuple[object, BaseException]] = []
    with running_server() as server:

        @server.onmessage
        def on_message(client: toad.Client, message: str) -> None:
            if message == "boom":
                raise RuntimeError("bad move")
            client.send("ok " + message)

        server.onerror(lambda client, exc: errors.append((client, exc)))
        with connect(url(server)) as a, connect(url(server)) as b:
            a.send("boom")
            b.send("fine")
            assert wait_recv(server, b) == "ok fine"
            a.send("still here")
            assert wait_recv(server, a) == "ok still here"
    assert len(errors) == 1
    assert isinstance(errors[0][1], RuntimeError)
    assert "bad move" in caplog.text  # and it was logged, with the callback's name
    assert "on_message" in caplog.text


def test_poll_returns_an_error_event_right_after_the_event_whose_callback_raised() -> None:
    with running_server() as server:

        @server.onmessage
        def on_message(client: toad.Client, message: str) -> None:
            if message == "boom":
                raise RuntimeError("bad move")

        events: list[toad.Event] = []
        with connect(url(server)) as ws:
            ws.send("boom")
            ws.send("fine")
            wait_until(lambda: events.extend(server.poll()) or len(events) >= 4)
    kinds = [(e.type, e.data if e.type == "message" else type(e.data).__name__) for e in events[:4]]
    assert kinds == [("open", "NoneType"), ("message", "boom"), ("error", "RuntimeError"), ("message", "fine")]
    assert events[2].client is events[1].client


def test_poll_hands_each_close_its_own_code_and_reason() -> None:
    with running_server() as server:
        events: list[toad.Event] = []
        first, second = open_peer(url(server)), open_peer(url(server))
        wait_until(lambda: events.extend(server.poll()) or len(events) == 2)
        first.close(4001, "first")
        second.close(4002, "second")
        wait_until(lambda: events.extend(server.poll()) or len(events) == 4)
    assert sorted(e.data for e in events if e.type == "close") == [(4001, "first"), (4002, "second")]


def test_an_onerror_callback_that_raises_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    with running_server() as server:
        server.onmessage(lambda client, message: 1 / 0)
        server.onerror(lambda client, exc: [][1])
        with connect(url(server)) as ws:
            ws.send("x")
            poll_until(server, lambda: "IndexError" in caplog.text)
            ws.send("y")
            poll_until(server, lambda: caplog.text.count("ZeroDivisionError") >= 2)


def test_a_protocol_error_goes_to_onerror_then_onclose_and_others_keep_playing() -> None:
    events: list[str] = []
    with running_server() as server:
        server.onerror(lambda client, exc: events.append(f"error {type(exc).__name__} {exc.close_code}"))
        server.onclose(lambda client: events.append(f"close {client.close_code}"))
        server.onmessage(lambda client, message: client.send(message))
        with connect(url(server)) as good:
            bad = RawClient(server.port)
            poll_until(server, lambda: len(server.clients) == 2)
            bad.send_frame(0x1, b"\xff\xfe")  # not UTF-8
            assert bad.recv_close()[0] == 1007
            poll_until(server, lambda: len(events) == 2)
            good.send("still fine")
            assert wait_recv(server, good) == "still fine"
            assert events == ["error ProtocolError 1007", "close 1007"]
            bad.close()


def test_a_message_over_the_limit_closes_with_1009() -> None:
    with running_server(max_message_size=1000) as server:
        with connect(url(server), max_size=None) as ws:
            ws.send("x" * 1000)
            got = poll_until(server, server.messages)
            assert len(got[0][1]) == 1000
            ws.send("x" * 1001)
            assert recv_until_closed(server, ws) == 1009


def test_a_client_within_max_messages_per_second_may_send_a_burst() -> None:
    # Two seconds' worth arrive at once (a lag spike): nothing is dropped.
    with running_server(max_messages_per_second=50) as server:
        raw = RawClient(server.port)
        poll_until(server, lambda: len(server.clients) == 1)
        raw.sock.sendall(b"".join(frame(0x1, str(i).encode()) for i in range(90)))
        got: list[str] = []
        poll_until(server, lambda: got.extend(m for _, m in server.messages()) or len(got) == 90)
        assert got == [str(i) for i in range(90)]
        assert server.clients[0].is_open
        raw.close()


def test_a_client_past_max_messages_per_second_is_closed_with_1008_and_others_keep_playing() -> None:
    errors: list[BaseException] = []
    with running_server(max_messages_per_second=20) as server:
        server.onerror(lambda client, exc: errors.append(exc))
        server.onmessage(lambda client, message: client.send(message))
        with connect(url(server)) as good:
            flooder = RawClient(server.port)
            poll_until(server, lambda: len(server.clients) == 2)
            flooder.sock.sendall(b"".join(frame(0x1, b"spam") for _ in range(500)))
            assert flooder.recv_close()[0] == 1008
            poll_until(server, lambda: len(server.clients) == 1)
            assert [type(e) for e in errors] == [toad.TooManyMessages]
            good.send("still fine")
            assert wait_recv(server, good) == "still fine"
            flooder.close()


@pytest.mark.parametrize("value", [0, -5, "10", True, float("nan")])
def test_a_bad_max_messages_per_second_is_reported_at_once(value: object) -> None:
    with pytest.raises(toad.UsageError, match="max_messages_per_second must be a number above 0"):
        toad.Server(max_messages_per_second=value)  # type: ignore[arg-type]


def test_a_wrong_callback_signature_is_reported_when_registered() -> None:
    server = toad.Server()
    with pytest.raises(toad.CallbackSignatureError, match=r"onmessage\(client, message\)"):
        server.onmessage(lambda message: None)
    with pytest.raises(toad.CallbackSignatureError, match="needs a function"):
        server.onopen("not a function")  # type: ignore[arg-type]
    # Defaults and *args are fine.
    server.onmessage(lambda client, message, extra=None: None)
    server.onclose(lambda *args: None)


def test_a_port_in_use_raises_address_in_use_with_a_hint() -> None:
    with running_server() as server:
        other = toad.Server()
        with pytest.raises(toad.AddressInUse, match="already in use"):
            other.start("127.0.0.1", server.port, block=False)


@pytest.mark.parametrize("port", [-1, 70000, "eighty", 8.5, None])
def test_a_bad_port_raises_invalid_address(port: object) -> None:
    with pytest.raises(toad.InvalidAddress, match="port"):
        toad.Server().start("127.0.0.1", port, block=False)  # type: ignore[arg-type]


def test_a_host_that_does_not_resolve_raises_invalid_address() -> None:
    with pytest.raises(toad.InvalidAddress, match="cannot listen"):
        toad.Server().start("no-such-host.invalid", 0, block=False)


def test_starting_a_running_server_again_is_a_usage_error() -> None:
    with running_server() as server:
        with pytest.raises(toad.UsageError, match="already running"):
            server.start("127.0.0.1", 0, block=False)


def test_several_servers_on_several_ports() -> None:
    with running_server() as one, running_server() as two:
        one.onmessage(lambda client, message: client.send("one"))
        two.onmessage(lambda client, message: client.send("two"))
        with connect(url(one)) as a, connect(url(two)) as b:
            a.send("?")
            b.send("?")
            assert wait_recv(one, a) == "one"
            assert wait_recv(two, b) == "two"


def test_a_client_that_never_finishes_the_handshake_is_dropped() -> None:
    with running_server(handshake_timeout=0.5) as server:
        raw = RawClient(server.port, handshake=False)
        raw.sock.sendall(b"GET / HTTP/1.1\r\n")  # and then nothing
        assert raw.at_eof(timeout=5)
        raw.close()


def test_an_oversized_handshake_gets_431() -> None:
    with running_server(max_header_size=1024) as server:
        raw = RawClient(server.port, handshake=False)
        raw.sock.sendall(b"GET / HTTP/1.1\r\nX-Junk: " + b"a" * 2000 + b"\r\n\r\n")
        assert raw.read_until(b"\r\n").startswith(b"HTTP/1.1 431")
        raw.close()


def test_a_plain_http_request_is_told_to_use_websocket() -> None:
    with running_server() as server:
        raw = RawClient(server.port, handshake=False)
        raw.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.read_until(b"\r\n").startswith(b"HTTP/1.1 426")
        assert raw.at_eof()
        raw.close()


def test_a_silent_peer_is_pinged_then_dropped_with_1006() -> None:
    events: list[object] = []
    with running_server(ping_interval=0.3, ping_timeout=0.3) as server:
        server.onerror(lambda client, exc: events.append(exc))
        server.onclose(lambda client: events.append(client.close_code))
        raw = RawClient(server.port)
        opcode, _ = raw.recv_frame()
        assert opcode == 0x9  # a Ping, which this peer will never answer
        poll_until(server, lambda: len(events) == 2, timeout=5)
        raw.close()
    assert isinstance(events[0], toad.ConnectionLost)
    assert events[1] == 1006


def test_a_peer_that_answers_pings_stays_connected() -> None:
    with running_server(ping_interval=0.2, ping_timeout=0.2) as server:
        with connect(url(server), ping_interval=None):  # websockets answers pings by itself
            poll_until(server, lambda: server.clients)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                server.poll()
                time.sleep(0.05)
            assert len(server.clients) == 1


def test_a_peer_that_ignores_our_close_is_dropped_after_the_close_timeout() -> None:
    with running_server(close_timeout=0.5) as server:
        raw = RawClient(server.port)
        (client,) = poll_until(server, server.opens)
        client.close()
        assert raw.recv_close()[0] == 1000
        # No Close frame back: the server gives up after close_timeout.
        assert raw.at_eof(timeout=5)
        poll_until(server, server.closes)
        assert client.close_code == 1006
        raw.close()


def test_send_never_blocks_and_a_client_that_stops_reading_is_dropped() -> None:
    payload = "x" * 60_000
    with running_server(max_write_buffer=1 << 20) as server:
        stalled = RawClient(server.port)  # reads nothing from now on
        with connect(url(server), max_size=None) as reader:
            poll_until(server, lambda: len(server.clients) == 2)
            slowest = 0.0
            for _ in range(200):  # 12 MB: far more than the socket buffers hold
                started = time.monotonic()
                server.broadcast(payload)
                slowest = max(slowest, time.monotonic() - started)
                assert reader.recv(timeout=5) == payload  # the reader keeps up
            # A broadcast is a few copies into buffers: never a wait for a slow peer
            # (which would last forever; the margin is for a busy machine).
            assert slowest < 2.0
            poll_until(server, lambda: len(server.clients) == 1, what="the stalled client to be dropped")
            server.broadcast("after")
            got = None
            deadline = time.monotonic() + 5
            while got != "after" and time.monotonic() < deadline:
                got = reader.recv(timeout=5)
            assert got == "after"
        stalled.close()


def test_logging_is_quiet_for_normal_traffic(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="toad")
    with running_server() as server:
        with connect(url(server)) as ws:
            ws.send("hi")
            poll_until(server, server.messages)
    assert caplog.records == []


def test_a_failed_peer_still_reads_our_close_frame_while_it_keeps_sending() -> None:
    # The server fails the connection on the frame header (1009) while the
    # peer is still sending the payload. Closing a socket with unread bytes
    # would reset the connection and lose the Close frame; toad half-closes
    # and drains instead, so the peer reads 1009.
    with running_server(max_message_size=1000) as server:
        raw = RawClient(server.port)
        sender = threading.Thread(target=lambda: _send_quietly(raw, frame(0x2, b"x" * (4 << 20))))
        sender.start()
        assert raw.recv_close()[0] == 1009
        sender.join(10)
        raw.sock.shutdown(socket.SHUT_WR)
        assert raw.sock.recv(1) == b""  # a clean end of stream, not a reset
        raw.close()


def _send_quietly(raw: RawClient, data: bytes) -> None:
    try:
        raw.sock.sendall(data)
    except OSError:
        pass


def test_one_message_larger_than_the_write_buffer_reaches_a_reading_client() -> None:
    big = b"y" * (6 << 20)
    with running_server(max_write_buffer=1 << 20) as server:
        with connect(url(server), max_size=None) as ws:
            (client,) = poll_until(server, server.opens)
            assert client.send(big)
            assert ws.recv(timeout=10) == big
            assert client.is_open


def test_garbage_from_many_peers_never_disturbs_a_good_client() -> None:
    rng = random.Random(6455)
    with running_server(handshake_timeout=2) as server:
        server.onmessage(lambda client, message: client.send(message))
        with connect(url(server)) as good:
            for round_ in range(30):
                raw = RawClient(server.port, handshake=round_ % 2 == 0)
                junk = rng.randbytes(rng.randrange(1, 3000))
                try:
                    raw.sock.sendall(junk)
                except OSError:
                    pass  # the server may have hung up already: that is its right
                good.send(f"ping {round_}")
                assert wait_recv(server, good) == f"ping {round_}"
                raw.close()
            poll_until(server, lambda: len(server.clients) == 1, what="every garbage peer to be gone")


def test_a_flooding_client_is_paused_not_buffered_and_nothing_is_lost() -> None:
    count = 100_000
    with running_server(max_queue=100) as server:
        raw = RawClient(server.port)
        sender = threading.Thread(
            target=_send_quietly, args=(raw, b"".join(frame(0x1, b"%d" % i) for i in range(count)))
        )
        sender.start()
        # The game does not poll: toad stops reading that client instead of queueing it all.
        wait_until(lambda: server._clients or server._queue, what="the client to open")
        time.sleep(0.5)
        assert len(server._queue) < count // 4
        got: list = []
        poll_until(server, lambda: got.extend(m for _, m in server.messages()) or len(got) == count, timeout=30)
        assert got == [str(i) for i in range(count)]
        sender.join(10)
        raw.close()


def test_max_connections_answers_503_to_one_more() -> None:
    with running_server(max_connections=2) as server:
        with connect(url(server)), connect(url(server)):
            poll_until(server, lambda: len(server.clients) == 2)
            raw = RawClient(server.port, handshake=False)
            assert raw.read_until(b"\r\n").startswith(b"HTTP/1.1 503")
            raw.close()
        poll_until(server, lambda: not server.clients)
        with connect(url(server)):  # room again
            poll_until(server, lambda: server.clients)


def test_a_bad_close_code_is_a_usage_error_and_the_client_stays_served() -> None:
    with running_server() as server:
        with connect(url(server)) as ws:
            (client,) = poll_until(server, server.opens)
            with pytest.raises(toad.InvalidCloseCode):
                client.close(1005)
            with pytest.raises(toad.InvalidCloseCode, match="123 bytes"):
                client.close(4000, "x" * 200)
            ws.send("still heard")
            assert poll_until(server, server.messages) == [(client, "still heard")]


def test_sending_a_number_is_a_usage_error() -> None:
    with running_server() as server:
        with connect(url(server)):
            (client,) = poll_until(server, server.opens)
            with pytest.raises(toad.InvalidMessage):
                client.send(5)  # type: ignore[arg-type]
            with pytest.raises(toad.InvalidMessage):
                server.broadcast({"not": "encoded"})  # type: ignore[arg-type]


def test_broadcast_skips_a_single_player_who_already_left() -> None:
    class Player:
        pass

    with running_server() as server:
        server.onopen(lambda client: Player())
        with connect(url(server)) as stays:
            with connect(url(server)):
                poll_until(server, lambda: len(server.clients) == 2)
            (gone,) = poll_until(server, server.closes)
            assert server.broadcast("hi", exclude=gone) == 1
            assert server.broadcast("only you", to=gone) == 0
            assert stays.recv(timeout=5) == "hi"


def test_stop_lets_a_close_the_game_started_finish_with_its_own_code() -> None:
    closed: list[tuple[int | None, str]] = []
    with running_server() as server:
        server.onclose(lambda client: closed.append((client.close_code, client.close_reason)))
        with connect(url(server)) as ws:
            (client,) = poll_until(server, server.opens)
            client.close(4005, "kicked")
            server.stop()
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
            assert ws.close_code == 4005
    assert closed == [(4005, "kicked")]


EMFILE_SERVER = """
import logging, os, resource, sys, time
import toad

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("toad").addHandler(handler)
server = toad.Server()
server.start(sys.argv[1], 0, block=False)  # "" listens on IPv4 and IPv6: two listeners
# Leave the server just a few spare descriptors.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used + 3, hard))
print(server.port, flush=True)
sys.stdin.readline()  # the test has connected many times
start = time.process_time()
time.sleep(2)
warnings = sum("cannot accept" in r.getMessage() for r in records)
print(time.process_time() - start, warnings, server._loop.crashed is None, flush=True)
"""


@pytest.mark.parametrize(
    ("host", "families"),
    [("127.0.0.1", [socket.AF_INET]), ("", [socket.AF_INET, socket.AF_INET6])],
    ids=["one-listener", "two-listeners"],
)
def test_running_out_of_descriptors_pauses_accepting_instead_of_spinning(host: str, families: list[int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER, host], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    loopback = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        peers = [socket.create_connection((loopback[f], port)) for _ in range(10) for f in families]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        cpu, warnings, alive = proc.stdout.readline().split()
        # A spinning loop burns the whole 2 s and logs a warning per turn.
        assert float(cpu) < 1.0
        assert int(warnings) <= 8
        assert alive == "True"  # the loop did not die of it
        for peer in peers:
            peer.close()
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("value", [0, -1, None, 2.5])
def test_max_queue_must_be_a_positive_whole_number(value: object) -> None:
    with pytest.raises(toad.UsageError, match="max_queue"):
        toad.Server(max_queue=value)  # type: ignore[arg-type]
    with pytest.raises(toad.UsageError, match="max_queue_size"):
        toad.Connection(max_queue_size=value)  # type: ignore[arg-type]


def test_stop_closes_a_paused_flooder_cleanly() -> None:
    # The game stopped polling, so toad stopped reading the flooding client;
    # stop() still reads its Close frame instead of waiting out the timeout.
    with running_server(max_queue=10, close_timeout=30) as server:
        with connect(url(server)) as ws:
            for i in range(5000):
                ws.send(str(i))
            assert server._loop is not None
            loop = server._loop
            wait_until(lambda: loop.paused, what="the client to be paused")
            started = time.monotonic()
            server.stop()
            # Unread, its Close would only end at the 30 s close timeout.
            assert time.monotonic() - started < 10
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=5)
            assert ws.close_code == 1001

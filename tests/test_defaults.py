"""The seed's module-level API: one-line calls on a default server and a default connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from helpers import poll_until, wait_until
from websockets.sync.client import connect

import toad
import toad.defaults


@pytest.fixture(autouse=True)
def fresh_defaults() -> Iterator[None]:
    """Each test starts with no default server, connection or module-level callback."""
    yield
    if toad.defaults._connection is not None:
        toad.defaults._connection.close()
        toad.defaults._connection.wait_closed(5)
    toad.stop_server()
    for callbacks in toad.defaults._callbacks.values():
        callbacks.clear()
    toad.defaults._server = None
    toad.defaults._connection = None


def test_start_server_with_block_false_and_the_polling_functions() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    port = toad.default_server().port
    with connect(f"ws://127.0.0.1:{port}") as ws:
        (client,) = poll_until(toad.default_server(), toad.opens)
        assert toad.clients() == [client]
        ws.send("hello")
        assert poll_until(toad.default_server(), toad.messages) == [(client, "hello")]
        assert toad.broadcast("to all") == 1
        assert ws.recv(timeout=5) == "to all"
    assert poll_until(toad.default_server(), toad.closes) == [client]
    toad.stop_server()
    assert not toad.default_server().running


def test_module_callbacks_drive_the_default_server() -> None:
    order: list[str] = []

    @toad.onopen
    def first(client: toad.Client) -> str:
        order.append("open")
        return "player"

    @toad.onmessage
    def echo(player: str, message: str) -> None:
        order.append(f"{player} says {message}")

    @toad.onclose
    def bye(player: str) -> None:
        order.append(f"{player} left")

    toad.start_server(host="127.0.0.1", port=0, block=False)
    server = toad.default_server()
    with connect(f"ws://127.0.0.1:{server.port}") as ws:
        ws.send("hi")
        poll_until(server, lambda: len(order) == 2)
    poll_until(server, lambda: len(order) == 3)
    assert order == ["open", "player says hi", "player left"]


def test_a_wrong_module_callback_signature_is_reported_at_start() -> None:
    @toad.onmessage
    def client_style(message: str) -> None:
        pass

    with pytest.raises(toad.CallbackSignatureError, match=r"onmessage\(client, message\)"):
        toad.start_server(host="127.0.0.1", port=0, block=False)


def test_a_callback_added_while_the_default_server_runs_is_checked_and_used() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    server = toad.default_server()
    with pytest.raises(toad.CallbackSignatureError):
        toad.onopen(lambda: None)
    seen: list[str] = []
    toad.onmessage(lambda client, message: seen.append(message))
    with connect(f"ws://127.0.0.1:{server.port}") as ws:
        ws.send("late")
        poll_until(server, lambda: seen)
    assert seen == ["late"]


def test_the_default_client_open_send_messages_isopen_close() -> None:
    server = toad.Server()
    server.onmessage(lambda client, message: client.send(message * 2))
    server.start("127.0.0.1", 0, block=False)
    try:
        toad.open(f"http://127.0.0.1:{server.port}", block=False)
        assert toad.isopen()
        toad.send("ab")
        assert poll_until([server, toad.default_connection()], toad.messages) == ["abab"]
        toad.close()
        assert toad.default_connection().wait_closed(5)
        assert not toad.isopen()
    finally:
        server.stop()


def test_the_default_client_blocks_until_closed() -> None:
    server = toad.Server()
    server.onopen(lambda client: client.close(4100, "go away"))
    server.start("127.0.0.1", 0, block=False)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.poll()
            server.wait_events(0.05)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        closed: list[int | None] = []
        toad.onclose(lambda: closed.append(toad.default_connection().close_code))
        toad.open(f"ws://127.0.0.1:{server.port}")  # block=True, as in the seed
        assert closed == [4100]
    finally:
        stop.set()
        thread.join()
        server.stop()


def test_send_without_open_says_to_open_first() -> None:
    with pytest.raises(toad.NotConnected, match=r"toad\.open"):
        toad.send("hi")


def test_opens_without_a_server_says_to_start_one() -> None:
    with pytest.raises(toad.NotConnected, match="start_server"):
        toad.opens()


def test_messages_with_nothing_running_says_what_to_do() -> None:
    with pytest.raises(toad.NotConnected, match="start_server"):
        toad.messages()


def test_messages_with_a_default_server_and_client_is_ambiguous() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    toad.open(f"ws://127.0.0.1:{toad.default_server().port}", block=False)
    with pytest.raises(toad.AmbiguousCall, match=r"toad\.Server\(\)"):
        toad.messages()
    # What is not ambiguous still works.
    assert toad.isopen()
    poll_until(toad.default_server(), toad.opens)


def test_module_callbacks_with_both_defaults_are_ambiguous() -> None:
    toad.onmessage(lambda client, message: None)
    toad.start_server(host="127.0.0.1", port=0, block=False)
    with pytest.raises(toad.AmbiguousCall):
        toad.open(f"ws://127.0.0.1:{toad.default_server().port}", block=False)


def test_starting_the_default_server_twice_is_a_usage_error() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    with pytest.raises(toad.UsageError, match="stop_server"):
        toad.start_server(host="127.0.0.1", port=0, block=False)


def test_stop_server_stops_a_blocking_default_server_from_another_thread() -> None:
    threading.Timer(0.3, toad.stop_server).start()
    started = time.monotonic()
    toad.start_server(host="127.0.0.1", port=0)  # blocks, as in the seed
    assert time.monotonic() - started < 5
    wait_until(lambda: not toad.default_server().running)

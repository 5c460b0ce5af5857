"""toad.Connection over real sockets: opening, failing clearly, threads, closing."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import trustme
from helpers import poll_until, running_server, wait_until

import toad


@pytest.fixture
def echo() -> Iterator[toad.Server]:
    """A toad server that echoes every message, and closes on "close me"."""
    server = toad.Server()

    @server.onmessage
    def on_message(client: toad.Client, message: str | bytes) -> None:
        if message == "close me":
            client.close(4000, "as you wish")
        else:
            client.send(message)

    thread = threading.Thread(target=server.start, args=("127.0.0.1", 0, True), daemon=True)
    thread.start()
    wait_until(lambda: server.port, what="the server to listen")
    yield server
    server.stop()
    thread.join(10)


def test_open_block_false_returns_open_and_polls_messages(echo: toad.Server) -> None:
    conn = toad.Connection()
    conn.open(f"ws://127.0.0.1:{echo.port}", block=False)
    assert conn.isopen()
    conn.send("hello")
    conn.send(b"\x01\x02")
    got: list = []
    poll_until(conn, lambda: got.extend(conn.messages()) or len(got) == 2)
    assert got == ["hello", b"\x01\x02"]
    assert [type(m) for m in got] == [toad.Text, toad.Binary]
    conn.close()
    assert conn.wait_closed(5)


def test_callbacks_with_block_false_run_only_in_poll_on_this_thread(echo: toad.Server) -> None:
    threads: list[int] = []
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.onopen(lambda: threads.append(threading.get_ident()))
    conn.onmessage(lambda message: threads.append(threading.get_ident()))
    conn.open(block=False)
    conn.send("x")
    wait_until(lambda: len(conn._queue) >= 2, what="open and message to be queued")
    assert threads == []
    conn.poll()
    assert threads == [threading.get_ident()] * 2
    conn.close()


def test_block_true_runs_callbacks_here_and_returns_when_the_server_closes(echo: toad.Server) -> None:
    log: list[object] = []
    conn = toad.Connection()

    @conn.onopen
    def on_open() -> None:
        log.append(threading.get_ident())
        conn.send("close me")

    @conn.onclose
    def on_close() -> None:
        log.append((conn.close_code, conn.close_reason))

    conn.open(f"ws://127.0.0.1:{echo.port}", block=True)
    assert log == [threading.get_ident(), (4000, "as you wish")]
    assert not conn.isopen()


def test_isopen_stays_true_until_the_last_message_is_read(echo: toad.Server) -> None:
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.open(block=False)
    conn.send("one")
    conn.send("two")
    conn.send("close me")
    assert conn.wait_closed(5)
    got: list = []
    while conn.isopen():
        got.extend(conn.messages())
    assert got == ["one", "two"]
    assert conn.close_code == 4000


def test_returning_false_from_onmessage_closes(echo: toad.Server) -> None:
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.onmessage(lambda message: False)
    conn.open(block=False)
    conn.send("bounce")
    poll_until(conn, lambda: conn.close_code is not None)
    assert conn.close_code == 1000


def test_a_raising_callback_goes_to_onerror(echo: toad.Server, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.onmessage(lambda message: int(message))
    conn.onerror(errors.append)
    conn.open(block=False)
    conn.send("not a number")
    conn.send("42")
    got: list = []
    poll_until(conn, lambda: got.extend(conn.messages()) or len(got) == 2)
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert "ValueError" in caplog.text
    conn.close()


def test_a_wrong_callback_signature_is_reported_when_registered() -> None:
    conn = toad.Connection()
    with pytest.raises(toad.CallbackSignatureError, match=r"onmessage\(message\)"):
        conn.onmessage(lambda client, message: None)
    with pytest.raises(toad.CallbackSignatureError, match=r"onclose\(\)"):
        conn.onclose(lambda client: None)


def test_send_before_open_is_a_usage_error() -> None:
    with pytest.raises(toad.NotConnected, match="open"):
        toad.Connection().send("hi")


def test_send_after_close_returns_false(echo: toad.Server) -> None:
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.open(block=False)
    conn.close()
    assert conn.send("late") is False
    assert conn.wait_closed(5)


@pytest.mark.parametrize(
    ("bad_url", "hint"),
    [
        ("localhost:8001", "no scheme"),
        ("ftp://localhost:8001", "ws://"),
        ("ws://:8001", "no host"),
        ("ws://localhost:99999", "not a valid URL"),
        ("ws://localhost:8001/#top", "fragment"),
        (8001, "must be a string"),
    ],
)
def test_a_bad_url_is_reported_at_once(bad_url: object, hint: str) -> None:
    with pytest.raises(toad.InvalidURL, match=hint):
        toad.Connection(bad_url)  # type: ignore[arg-type]


def test_nothing_listening_is_a_clear_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(toad.ConnectionFailed, match="nothing is listening"):
        toad.Connection(f"ws://127.0.0.1:{port}").open(block=False)


def test_an_unknown_host_is_a_clear_connection_failure() -> None:
    with pytest.raises(toad.ConnectionFailed, match="cannot find the host"):
        toad.Connection("ws://no-such-host.invalid:8001").open(block=False)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        conn = toad.Connection(f"ws://127.0.0.1:{silent.getsockname()[1]}", open_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(toad.ConnectionFailed, match="timed out"):
            conn.open(block=False)
        assert time.monotonic() - started < 3


def test_a_refused_handshake_says_what_the_server_answered() -> None:
    with running_server(origins=["https://mygame.example"]) as server:
        conn = toad.Connection(f"ws://127.0.0.1:{server.port}", origin="https://evil.example")
        with pytest.raises(toad.ConnectionFailed, match="403") as info:
            conn.open(block=False)
        assert isinstance(info.value.__cause__, toad.InvalidHandshake)


def test_an_allowed_origin_connects() -> None:
    with running_server(origins=["https://mygame.example"]) as server:
        conn = toad.Connection(f"ws://127.0.0.1:{server.port}", origin="https://mygame.example")
        conn.open(block=False)
        poll_until(server, lambda: server.clients)
        conn.close()


def test_a_server_and_clients_in_one_program() -> None:
    with running_server() as server:
        server.onmessage(lambda client, message: server.broadcast(f"{client.id}: {message}"))
        one = toad.Connection(f"ws://127.0.0.1:{server.port}")
        two = toad.Connection(f"ws://127.0.0.1:{server.port}")
        one.open(block=False)
        two.open(block=False)
        poll_until(server, lambda: len(server.clients) == 2)
        one.send("hi from one")
        seen_by_two = poll_until([server, two], two.messages)
        assert seen_by_two[0].endswith(": hi from one")
        one.close()
        two.close()
        assert one.wait_closed(5) and two.wait_closed(5)


def test_reopening_an_open_connection_is_a_usage_error(echo: toad.Server) -> None:
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.open(block=False)
    with pytest.raises(toad.UsageError, match="already open"):
        conn.open(block=False)
    conn.close()
    assert conn.wait_closed(5)
    conn.open(block=False)  # a closed connection can open again
    assert conn.isopen()
    conn.close()


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


def test_wss_end_to_end(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls
    with running_server(ssl=server_context) as server:
        server.onmessage(lambda client, message: client.send(message.upper()))
        conn = toad.Connection(f"wss://localhost:{server.port}", ssl=client_context)
        conn.open(block=False)
        conn.send("secret")
        assert poll_until([server, conn], conn.messages) == ["SECRET"]
        conn.close()
        assert conn.wait_closed(5)


def test_wss_with_an_untrusted_certificate_fails_clearly(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, _ = tls
    with running_server(ssl=server_context) as server:
        conn = toad.Connection(f"wss://localhost:{server.port}")  # the system's trust store
        with pytest.raises(toad.ConnectionFailed, match="TLS"):
            conn.open(block=False)


def test_a_polling_loop_ends_after_onclose_has_run(echo: toad.Server) -> None:
    closes: list[int | None] = []
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.onclose(lambda: closes.append(conn.close_code))
    conn.open(block=False)
    conn.send("close me")
    assert conn.wait_closed(5)
    while conn.isopen():
        conn.messages()
    assert closes == [4000]


def test_isopen_is_false_as_soon_as_the_game_closes(echo: toad.Server) -> None:
    conn = toad.Connection(f"ws://127.0.0.1:{echo.port}")
    conn.open(block=False)
    conn.close()
    assert not conn.isopen()
    assert conn.wait_closed(5)

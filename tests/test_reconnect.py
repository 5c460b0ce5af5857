"""toad.Connection(reconnect=True) over real sockets: what comes back, when, and what the game sees.

Servers restart on the same port (toad.Server stop() then start(), which
SO_REUSEADDR allows), close with a chosen code, or are raw listeners that
drop each connection right after its handshake. Delays are a few hundredths
of a second; timing checks only bound waits from below (a timer never fires
early), so a busy machine makes them slower, never wrong.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import wire
from helpers import wait_until

import toad
import toad.defaults

pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of the suite

WAIT = 10.0  # the longest any one wait may take before the test fails, on a busy machine
FAST = {"reconnect": True, "reconnect_delay": 0.02, "reconnect_max_delay": 0.1}


# -- servers ---------------------------------------------------------------------------


class EchoServer:
    """A toad.Server run with block=True on a thread of its own, so it needs no polling.

    It echoes every message, and closes the client with code N on "close me N".
    :meth:`restart` stops it and starts it again on the same port.
    """

    def __init__(self) -> None:
        self.server = toad.Server()
        self.port = 0
        self.connections = 0

        @self.server.onopen
        def on_open(client: toad.Client) -> None:
            self.connections += 1

        @self.server.onmessage
        def on_message(client: toad.Client, message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith("close me "):
                client.close(int(message.split()[-1]), "as you wish")
            else:
                client.send(message)

        self.thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.start, args=("127.0.0.1", self.port, True), daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.running, what="the server to listen")
        self.port = self.server.port

    def stop(self) -> None:
        self.server.stop()
        if self.thread is not None:
            self.thread.join(WAIT)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


class DroppingServer:
    """A raw listener that answers each handshake, then drops the first ``drops`` connections (1006).

    The connections after those stay open until the test ends. ``accepted``
    holds the monotonic time of each connection.
    """

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.accepted: list[float] = []
        self.kept: list[socket.socket] = []
        threading.Thread(target=self._serve, name="dropping-server", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed at the end of the test
            self.accepted.append(time.monotonic())
            sock.settimeout(WAIT)
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            sock.sendall(wire.response(wire.request_key(request)))
            if len(self.accepted) <= self.drops:
                sock.close()
            else:
                self.kept.append(sock)

    def close(self) -> None:
        self.listener.close()
        for sock in self.kept:
            sock.close()


@pytest.fixture
def dropping() -> Iterator[Callable[[int], DroppingServer]]:
    servers: list[DroppingServer] = []

    def make(drops: int) -> DroppingServer:
        server = DroppingServer(drops)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def connections() -> Iterator[Callable[..., toad.Connection]]:
    """Make ``toad.Connection(url, **options)`` (not opened); closed at teardown."""
    made: list[toad.Connection] = []

    def make(url: str, **options: Any) -> toad.Connection:
        conn = toad.Connection(url, **options)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()
        conn.wait_closed(WAIT)


# -- the game ----------------------------------------------------------------------------


def play_until(conn: toad.Connection, done: Callable[[list[toad.Event]], bool], what: str) -> list[toad.Event]:
    """Poll ``conn`` as a game's frames would, keeping its events, until ``done(events)``.

    Checks on every frame that ``isopen()`` stays true, as a ``while
    conn.isopen():`` game loop needs.
    """
    seen: list[toad.Event] = []
    deadline = time.monotonic() + WAIT
    while not done(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT} s; events: {[e.type for e in seen]}")
        assert conn.isopen(), f"isopen() turned false; events: {[e.type for e in seen]}"
        seen += conn.poll()
        conn.wait_events(0.01)
    return seen


def kinds(events: list[toad.Event]) -> list[str]:
    return [event.type for event in events]


def opens(events: list[toad.Event]) -> int:
    return kinds(events).count("open")


# -- reconnecting ----------------------------------------------------------------------------


def test_reconnects_after_the_server_restarts_on_the_same_port(
    echo: EchoServer, connections: Callable[..., toad.Connection]
) -> None:
    conn = connections(echo.url, **FAST)
    seen_in_callbacks: list[tuple[str, bool]] = []
    conn.onopen(lambda: seen_in_callbacks.append(("open", conn.reconnecting)))
    conn.onclose(lambda: seen_in_callbacks.append(("close", conn.reconnecting)))
    conn.open(block=False)
    play_until(conn, lambda events: opens(events) == 1, "the first open")

    echo.restart()
    events = play_until(conn, lambda events: opens(events) == 1, "the reopen")
    assert kinds(events) == ["close", "open"]  # a server that stops says 1001: no ConnectionLost
    assert conn.close_code == 1001
    # onclose can tell the player "reconnecting..."; onopen can hide it again.
    assert seen_in_callbacks == [("open", False), ("close", True), ("open", False)]
    assert not conn.reconnecting

    conn.send("still here?")
    assert play_until(conn, lambda events: "message" in kinds(events), "the echo")[-1].data == "still here?"
    wait_until(lambda: echo.connections == 2, what="the server's second onopen")  # one before the restart, one after


def test_a_lost_connection_reports_connection_lost_then_reconnects(
    connections: Callable[..., toad.Connection], dropping: Callable[[int], DroppingServer]
) -> None:
    server = dropping(1)
    conn = connections(server.url, **FAST)
    conn.open(block=False)
    events = play_until(conn, lambda events: opens(events) == 2, "the reconnect")
    assert kinds(events) == ["open", "error", "close", "open"]
    assert isinstance(events[1].data, toad.ConnectionLost)
    assert conn.close_code == 1006


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013])
def test_the_server_closing_with_a_going_away_code_reconnects(
    code: int, echo: EchoServer, connections: Callable[..., toad.Connection]
) -> None:
    conn = connections(echo.url, **FAST)
    conn.open(block=False)
    conn.send(f"close me {code}")
    events = play_until(conn, lambda events: opens(events) == 2, "the reconnect")
    assert kinds(events) == ["open", "close", "open"]
    assert conn.close_code == code
    wait_until(lambda: echo.connections == 2, what="the server's second onopen")


@pytest.mark.parametrize("code", [1000, 1008, 4000])
def test_a_meant_close_does_not_reconnect(
    code: int, echo: EchoServer, connections: Callable[..., toad.Connection]
) -> None:
    conn = connections(echo.url, **FAST)
    conn.open(block=False)
    conn.send(f"close me {code}")
    assert conn.wait_closed(WAIT)  # the loop ended: nothing is left to reconnect
    events: list[toad.Event] = []
    while conn.isopen():
        events += conn.poll()
    assert kinds(events) == ["open", "close"]
    assert conn.close_code == code
    assert not conn.reconnecting
    assert echo.connections == 1


def test_the_games_own_close_does_not_reconnect(echo: EchoServer, connections: Callable[..., toad.Connection]) -> None:
    conn = connections(echo.url, **FAST)
    conn.open(block=False)
    conn.close(1001, "leaving the game")  # 1001, a reconnect code when the server sends it
    assert not conn.isopen()
    assert conn.wait_closed(WAIT)
    assert kinds(conn.poll()) == ["open", "close"]
    assert not conn.reconnecting
    assert echo.connections == 1


def test_close_while_reconnecting_ends_the_connection(
    echo: EchoServer, connections: Callable[..., toad.Connection]
) -> None:
    conn = connections(echo.url, reconnect=True, reconnect_delay=0.05)
    conn.open(block=False)
    echo.stop()
    play_until(conn, lambda events: "close" in kinds(events), "the close")
    assert conn.reconnecting
    conn.close()
    assert not conn.isopen()
    assert not conn.reconnecting
    assert conn.wait_closed(WAIT)
    assert conn.poll() == []


def test_send_returns_false_while_reconnecting(echo: EchoServer, connections: Callable[..., toad.Connection]) -> None:
    conn = connections(echo.url, reconnect=True, reconnect_delay=0.05)
    conn.open(block=False)
    echo.stop()
    play_until(conn, lambda events: "close" in kinds(events), "the close")
    assert conn.reconnecting
    assert conn.send("anyone?") is False
    assert conn.isopen()


def test_the_backoff_grows_to_its_cap_and_is_jittered(
    echo: EchoServer, connections: Callable[..., toad.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="toad")
    delay, cap, attempts = 0.02, 0.16, 7
    conn = connections(
        echo.url, reconnect=True, reconnect_delay=delay, reconnect_max_delay=cap, reconnect_attempts=attempts
    )
    conn.open(block=False)
    echo.stop()  # and nothing listens on its port again: every attempt is refused
    events = play_until(conn, lambda events: "error" in kinds(events), "giving up")
    assert kinds(events) == ["open", "close", "error"]  # failed attempts are not events...

    scheduled = [r for r in caplog.records if r.getMessage().startswith("reconnecting to") and " in " in r.msg]
    failed = [r for r in caplog.records if r.getMessage().startswith("reconnecting to") and "failed" in r.msg]
    assert len(scheduled) == len(failed) == attempts  # ...they are logged
    waits = [record.args[1] for record in scheduled]  # type: ignore[index]
    for n, wait in enumerate(waits):
        nominal = min(cap, delay * 2**n)  # 0.02, 0.04, 0.08, then 0.16 from the fourth on
        assert 0.5 * nominal <= wait <= nominal, (n, waits)
    assert len(set(waits)) == len(waits)  # a random factor each time, not the nominal wait
    for start, end, wait in zip(scheduled, failed, waits, strict=True):
        assert end.created - start.created >= wait - 0.005  # each wait was waited (to clock resolution)


def test_a_connection_that_drops_right_after_opening_keeps_backing_off(
    connections: Callable[..., toad.Connection], dropping: Callable[[int], DroppingServer]
) -> None:
    server = dropping(1000)
    conn = connections(server.url, reconnect=True, reconnect_delay=0.02, reconnect_max_delay=1.0)
    conn.open(block=False)
    play_until(conn, lambda events: opens(events) == 6, "five reconnects")
    # The fifth reconnect waited at least 0.5 * 0.02 * 2**4 = 0.16 s: the wait did not
    # start over at each open, or a server that accepts and drops would be hammered.
    assert server.accepted[5] - server.accepted[4] >= 0.16


def test_running_out_of_attempts_is_an_error_then_the_end(
    echo: EchoServer, connections: Callable[..., toad.Connection]
) -> None:
    conn = connections(echo.url, reconnect=True, reconnect_delay=0.02, reconnect_attempts=2)
    errors: list[BaseException] = []
    conn.onerror(errors.append)
    conn.open(block=False)
    echo.stop()
    assert conn.wait_closed(WAIT)  # the loop ends by itself once it gives up
    events: list[toad.Event] = []
    while conn.isopen():
        events += conn.poll()
    assert kinds(events) == ["open", "close", "error"]
    assert len(errors) == 1 and isinstance(errors[0], toad.ConnectionFailed)
    assert "gave up reconnecting" in str(errors[0]) and "2 failed attempts" in str(errors[0])
    assert "nothing is listening" in str(errors[0])  # the last attempt's reason
    assert not conn.isopen() and not conn.reconnecting


def test_the_first_open_still_fails_loudly(connections: Callable[..., toad.Connection]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = connections(f"ws://127.0.0.1:{port}", **FAST)
    with pytest.raises(toad.ConnectionFailed, match="nothing is listening"):
        conn.open(block=False)


def test_block_true_serves_across_reconnects_and_returns_at_the_end(echo: EchoServer) -> None:
    conn = toad.Connection(echo.url, **FAST)
    log: list[object] = []

    @conn.onopen
    def on_open() -> None:
        log.append(("open", threading.get_ident()))
        if len(log) == 1:
            conn.send("close me 1012")  # "service restart": come back
        else:
            conn.close()

    conn.onclose(lambda: log.append(("close", conn.close_code)))
    conn.open(block=True)
    here = threading.get_ident()
    assert log == [("open", here), ("close", 1012), ("open", here), ("close", 1000)]
    assert not conn.isopen()


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"reconnect": "yes"}, "reconnect must be True or False"),
        ({"reconnect_delay": 0}, "reconnect_delay must be a number of seconds above 0"),
        ({"reconnect_delay": float("nan")}, "reconnect_delay must be a number"),
        ({"reconnect_max_delay": "30"}, "reconnect_max_delay must be a number"),
        ({"reconnect_delay": 5, "reconnect_max_delay": 1}, "must be at least reconnect_delay"),
        ({"reconnect_attempts": 0}, "1 or more, or None to try forever"),
        ({"reconnect_attempts": 2.5}, "whole number"),
    ],
)
def test_bad_reconnect_options_are_reported_at_once(options: dict[str, Any], hint: str) -> None:
    with pytest.raises(toad.UsageError, match=hint):
        toad.Connection("ws://localhost:8001", **options)


# -- the seed's module-level API and pygame -------------------------------------------------


@pytest.fixture
def fresh_defaults() -> Iterator[None]:
    """No default server, connection or module-level callback before or after the test."""
    yield
    if toad.defaults._connection is not None:
        toad.defaults._connection.close()
        toad.defaults._connection.wait_closed(WAIT)
    for callbacks in toad.defaults._callbacks.values():
        callbacks.clear()
    toad.defaults._connection = None


@pytest.mark.usefixtures("fresh_defaults")
def test_the_module_level_open_takes_reconnect(echo: EchoServer) -> None:
    opened: list[bool] = []
    toad.onopen(lambda: opened.append(True))
    toad.open(echo.url, block=False, **FAST)
    toad.send("close me 1013")  # "try again later"
    deadline = time.monotonic() + WAIT
    while len(opened) < 2:
        assert toad.isopen() and time.monotonic() < deadline
        toad.poll()
        time.sleep(0.005)
    assert toad.default_connection().close_code == 1013
    toad.close()
    assert not toad.isopen()


@pytest.mark.usefixtures("fresh_defaults")
def test_pygame_sees_open_close_open_across_a_server_restart(
    echo: EchoServer, connections: Callable[..., toad.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    pygame = pytest.importorskip("pygame")
    import toad.pg

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    monkeypatch.setattr(toad.pg, "_bridge", toad.pg._Bridge())
    pygame.display.init()
    try:
        pygame.event.clear()
        conn = toad.pg.attach(connections(echo.url, **FAST))
        conn.open(block=False)
        seen: list[Any] = []

        def frames_until(count: int, what: str) -> None:
            deadline = time.monotonic() + WAIT
            while len(seen) < count:
                assert time.monotonic() < deadline, f"{what}: {[pygame.event.event_name(e.type) for e in seen]}"
                toad.pg.pump()
                seen.extend(e for e in pygame.event.get() if e.type in toad.pg.TYPES)
                time.sleep(0.002)

        frames_until(1, "the first OPEN")
        echo.restart()
        frames_until(3, "CLOSE then OPEN")
        assert [e.type for e in seen] == [toad.pg.OPEN, toad.pg.CLOSE, toad.pg.OPEN]
        assert all(e.source is conn for e in seen)
        assert seen[1].code == 1001
    finally:
        pygame.event.clear()
        pygame.display.quit()

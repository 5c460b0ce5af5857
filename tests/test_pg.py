"""toad.pg, the pygame-ce bridge: toad's events in pygame's event queue, none lost.

Real pygame-ce with SDL's dummy video and audio drivers (no window, no sound
device), real sockets on 127.0.0.1. The test's thread plays the game: each
frame calls ``toad.pg.pump()`` then ``pygame.event.get()``. Raw sockets stand
in for peers that must send faster than toad could, or break the rules.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pygame
import pytest
import wire
from helpers import RawClient, poll_until, running_server, wait_until

import toad
import toad.defaults
import toad.pg

pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of the suite

WAIT = 10.0  # the longest any one wait may take before the test fails, on a busy machine
FRAME = 1 / 500  # the test's "game" runs fast frames: the bridge, not the frame rate, is under test
FLOOD = 200_000


# -- the game -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def pygame_up() -> Iterator[None]:
    """pygame initialised with SDL's dummy drivers: the event queue works, no device is needed."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["SDL_AUDIODRIVER"] = "dummy"
    pygame.init()
    yield
    pygame.quit()


@pytest.fixture(autouse=True)
def fresh_bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with an empty bridge, an empty event queue and no default endpoints."""
    monkeypatch.setattr(toad.pg, "_bridge", toad.pg._Bridge())
    if not pygame.display.get_init():
        pygame.display.init()
    pygame.event.clear()
    yield
    pygame.event.clear()
    if toad.defaults._connection is not None:
        toad.defaults._connection.close()
        toad.defaults._connection.wait_closed(5)
    toad.stop_server()
    toad.defaults._server = None
    toad.defaults._connection = None


def frame() -> list[pygame.event.Event]:
    """One frame of the game: pump, then take the whole queue."""
    toad.pg.pump()
    return pygame.event.get()


def toad_events(events: list[pygame.event.Event]) -> list[pygame.event.Event]:
    return [event for event in events if event.type in toad.pg.TYPES]


def play_until(
    done: Callable[[list[pygame.event.Event]], bool], what: str, timeout: float = WAIT
) -> list[pygame.event.Event]:
    """Run frames, keeping the toad events, until ``done(events so far)``; fail after ``timeout``."""
    seen: list[pygame.event.Event] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        if time.monotonic() > deadline:
            kinds = [pygame.event.event_name(e.type) for e in seen[-5:]]
            raise AssertionError(f"{what} did not happen within {timeout} s; {len(seen)} events, last {kinds}")
        seen += toad_events(frame())
        time.sleep(FRAME)
    return seen


def of_type(events: list[pygame.event.Event], kind: int, source: Any = None) -> list[pygame.event.Event]:
    return [e for e in events if e.type == kind and (source is None or e.source is source)]


class Player:
    """What a game's ``onopen`` returns: the seed's tip."""

    def __init__(self, client: toad.Client, name: str) -> None:
        self.client = client
        self.name = name


# -- a raw WebSocket server: a peer that sends as fast as the kernel takes it ---------------


class RawServer:
    """Answers one client's handshake on a plain socket; then the test writes frames itself."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.sock: socket.socket | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(WAIT)
        sock, _ = self.listener.accept()
        sock.settimeout(WAIT)
        request = b""
        while b"\r\n\r\n" not in request:
            request += sock.recv(4096)
        sock.sendall(wire.response(wire.request_key(request)))
        self.sock = sock
        self.ready.set()

    def peer(self) -> socket.socket:
        assert self.ready.wait(WAIT), "the client never finished its handshake"
        assert self.sock is not None
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[], RawServer]]:
    servers: list[RawServer] = []

    def start() -> RawServer:
        servers.append(RawServer())
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def text_frames(payloads: list[bytes], *, masked: bool) -> bytes:
    """Text frames of short payloads in one blob; a zero masking key leaves the payload as it is."""
    mask_bit, key = (0x80, b"\x00\x00\x00\x00") if masked else (0x00, b"")
    return b"".join(bytes([0x81, mask_bit | len(p)]) + key + p for p in payloads)


# -- 1. floods while the game stalls ---------------------------------------------------


def test_200k_messages_that_arrive_while_the_game_stalls_all_reach_pygame_in_order(
    raw_server: Callable[[], RawServer], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = raw_server()
    conn = toad.pg.attach(toad_connect(server.url, ping_interval=None, close_timeout=0.5))
    server.peer().sendall(text_frames([str(i).encode() for i in range(FLOOD)], masked=False))
    # The game stalls (no pump) until toad's network thread has queued the whole flood.
    wait_until(lambda: len(conn._queue) == 1 + FLOOD, WAIT, "the flood queued in the connection")

    messages: list[str] = []
    frames = 0
    deadline = time.monotonic() + WAIT
    while len(messages) < FLOOD and time.monotonic() < deadline:
        events = toad_events(frame())
        assert len(events) <= toad.pg.DEFAULT_LIMIT  # pygame's queue is never filled by toad
        messages += [e.message for e in of_type(events, toad.pg.MESSAGE)]
        assert all(e.source is conn and e.client is None for e in events)
        frames += 1
    assert messages == [str(i) for i in range(FLOOD)]
    assert frames >= FLOOD // toad.pg.DEFAULT_LIMIT  # spread over frames, not one giant hitch


def test_clients_flooding_a_stalled_server_lose_nothing_and_keep_each_ones_order() -> None:
    count, per_client = 4, FLOOD // 4
    with running_server(ping_interval=None) as server:
        toad.pg.attach(server)
        server.onopen(lambda client: Player(client, client.path.strip("/")))
        peers = [RawClient(server.port, path=f"/p{n}") for n in range(count)]

        def flood(peer: RawClient, name: str) -> None:
            peer.sock.settimeout(60)  # sendall waits while the stalled server reads nothing
            peer.sock.sendall(text_frames([f"{name} {i}".encode() for i in range(per_client)], masked=True))

        senders = [threading.Thread(target=flood, args=(p, f"p{n}"), daemon=True) for n, p in enumerate(peers)]
        for sender in senders:
            sender.start()
        # The game stalls: the server queues max_queue messages per client, then TCP holds the rest back.
        limit = count * (1 + server.max_queue)
        wait_until(lambda: len(server._queue) >= limit, WAIT, "the server's queue to fill")

        got: dict[str, list[str]] = {f"p{n}": [] for n in range(count)}
        opens = 0
        deadline = time.monotonic() + 30
        while sum(map(len, got.values())) < FLOOD:
            assert time.monotonic() < deadline, f"only {sum(map(len, got.values()))} messages arrived"
            for event in toad_events(frame()):
                assert event.source is server
                if event.type == toad.pg.MESSAGE:
                    got[event.client.name].append(event.message)
                else:
                    assert event.type == toad.pg.OPEN
                    opens += 1
        for sender in senders:
            sender.join(WAIT)
        assert opens == count
        for name, messages in got.items():
            assert messages == [f"{name} {i}" for i in range(per_client)]
        for peer in peers:
            peer.close()


# -- 2. within one frame ------------------------------------------------------------------


def test_a_message_reaches_pygame_in_the_first_frame_after_it_arrives(
    toad_server: Callable[..., toad.Server], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = toad_server()
    conn = toad.pg.attach(toad_connect(f"ws://127.0.0.1:{server.port}"))
    (peer,) = poll_until(server, server.opens)
    play_until(lambda events: bool(of_type(events, toad.pg.OPEN)), "the OPEN")
    for n in range(20):
        peer.send(f"move {n}")
        assert conn.wait_events(WAIT)  # the message is in toad's queue: the game's next frame has it
        assert [e.message for e in of_type(frame(), toad.pg.MESSAGE)] == [f"move {n}"]


# -- 3. host and join in one process --------------------------------------------------------


def test_a_game_that_hosts_and_joins_sees_both_roles_told_apart_by_source() -> None:
    with running_server() as server:
        toad.pg.attach(server)
        server.onopen(lambda client: Player(client, "guest"))
        conn = toad.pg.attach(toad.Connection(f"ws://127.0.0.1:{server.port}"))
        conn.open(block=False)

        events = play_until(lambda ev: len(of_type(ev, toad.pg.OPEN)) == 2, "both OPENs")
        (hosted,) = of_type(events, toad.pg.OPEN, server)
        (joined,) = of_type(events, toad.pg.OPEN, conn)
        player = hosted.client
        assert isinstance(player, Player) and player.client.path == "/"
        assert joined.client is None

        conn.send("hello host")
        player.client.send("hello guest")
        events = play_until(lambda ev: len(of_type(ev, toad.pg.MESSAGE)) == 2, "both MESSAGEs")
        (to_host,) = of_type(events, toad.pg.MESSAGE, server)
        (to_guest,) = of_type(events, toad.pg.MESSAGE, conn)
        assert (to_host.client, to_host.message) == (player, "hello host")
        assert (to_guest.client, to_guest.message) == (None, "hello guest")

        player.client.close(4000, "game over")
        events = play_until(lambda ev: len(of_type(ev, toad.pg.CLOSE)) == 2, "both CLOSEs")
        (host_close,) = of_type(events, toad.pg.CLOSE, server)
        (guest_close,) = of_type(events, toad.pg.CLOSE, conn)
        assert (guest_close.client, guest_close.code, guest_close.reason) == (None, 4000, "game over")
        assert (host_close.client, host_close.code) == (player, 4000)
        assert not of_type(events, toad.pg.ERROR)


def test_the_default_server_and_connection_are_picked_up_without_attach() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    toad.open(f"ws://127.0.0.1:{toad.default_server().port}", block=False)
    events = play_until(lambda ev: len(of_type(ev, toad.pg.OPEN)) == 2, "both OPENs")
    assert {id(e.source) for e in events} == {id(toad.default_server()), id(toad.default_connection())}
    assert toad.pg.attached() == [toad.default_server(), toad.default_connection()]


def test_a_detached_endpoint_is_not_pumped_not_even_a_default() -> None:
    toad.start_server(host="127.0.0.1", port=0, block=False)
    server = toad.default_server()
    toad.pg.attach(server)
    toad.pg.attach(server)
    assert toad.pg.attached() == [server]  # attached twice is attached once
    toad.pg.detach(server)
    assert toad.pg.attached() == []  # and the default is not picked up again
    peer = RawClient(server.port)
    assert server.wait_events(WAIT)
    for _ in range(3):
        assert not toad_events(frame())
    assert len(server.opens()) == 1  # the OPEN waited in toad for whoever polls it
    peer.close()


# -- 4. pygame's queue is full --------------------------------------------------------------


def test_a_full_pygame_queue_loses_nothing_and_keeps_the_order_across_frames(
    raw_server: Callable[[], RawServer], toad_connect: Callable[..., toad.Connection]
) -> None:
    filler_type = pygame.event.custom_type()
    room, count = 50, 500
    server = raw_server()
    conn = toad.pg.attach(toad_connect(server.url, ping_interval=None, close_timeout=0.5))
    server.peer().sendall(text_frames([str(i).encode() for i in range(count)], masked=False))
    wait_until(lambda: len(conn._queue) == 1 + count, WAIT, "the messages queued in the connection")

    fillers_posted = fillers_seen = 0
    messages: list[str] = []
    frames = 0
    while len(messages) < count:
        frames += 1
        assert frames < 4 * count // room, "the bridge stopped posting"
        # The game's own events take all but `room` places, every frame.
        try:
            for _ in range(65535 - room):
                pygame.event.post(pygame.event.Event(filler_type, n=fillers_posted))
                fillers_posted += 1
        except pygame.error:
            pass  # SDL had a few events of its own in the queue
        assert toad.pg.pump() <= room
        for event in pygame.event.get():
            if event.type == filler_type:
                assert event.n == fillers_seen
                fillers_seen += 1
            elif event.type == toad.pg.MESSAGE:
                messages.append(event.message)
    assert messages == [str(i) for i in range(count)]
    assert fillers_seen == fillers_posted
    assert frames >= count // room  # the rest waited, frame after frame


def test_pump_posts_at_most_limit_and_nothing_while_the_game_has_not_taken_the_last_batch(
    raw_server: Callable[[], RawServer], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = raw_server()
    conn = toad.pg.attach(toad_connect(server.url, ping_interval=None, close_timeout=0.5))
    server.peer().sendall(text_frames([str(i).encode() for i in range(100)], masked=False))
    wait_until(lambda: len(conn._queue) == 101, WAIT, "the messages queued in the connection")
    assert toad.pg.pump(limit=30) == 30
    assert toad.pg.pump(limit=30) == 0  # the 30 are still in pygame's queue
    first = toad_events(pygame.event.get())
    assert toad.pg.pump(limit=30) == 30
    second = toad_events(pygame.event.get())
    assert [e.type for e in first] == [toad.pg.OPEN] + [toad.pg.MESSAGE] * 29
    assert [e.message for e in first[1:] + second] == [str(i) for i in range(59)]


# -- 5. errors -----------------------------------------------------------------------------


def test_a_peer_that_breaks_the_protocol_yields_error_then_close() -> None:
    with running_server() as server:
        toad.pg.attach(server)
        peer = RawClient(server.port)
        peer.send_frame(0x3, b"")  # a reserved opcode
        events = play_until(lambda ev: bool(of_type(ev, toad.pg.CLOSE)), "the CLOSE")
        assert [e.type for e in events] == [toad.pg.OPEN, toad.pg.ERROR, toad.pg.CLOSE]
        opened, error, closed = events
        assert isinstance(error.error, toad.ProtocolError) and error.error.close_code == 1002
        assert error.client is opened.client and closed.client is opened.client
        assert closed.code == 1002
        peer.close()


def test_a_lost_connection_yields_error_then_close_with_1006(
    raw_server: Callable[[], RawServer], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = raw_server()
    conn = toad.pg.attach(toad_connect(server.url, close_timeout=0.5))
    server.peer().close()  # no Close frame: the TCP connection just ends
    events = play_until(lambda ev: bool(of_type(ev, toad.pg.CLOSE)), "the CLOSE")
    assert [e.type for e in events] == [toad.pg.OPEN, toad.pg.ERROR, toad.pg.CLOSE]
    assert isinstance(events[1].error, toad.ConnectionLost)
    assert (events[2].source, events[2].code) == (conn, 1006)


def test_a_callback_that_raises_posts_an_error_event_and_the_connection_goes_on(
    toad_server: Callable[..., toad.Server], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = toad.pg.attach(toad_server())
    errors: list[Exception] = []

    @server.onmessage
    def explode(client: toad.Client, message: str) -> None:
        if message == "boom":
            raise RuntimeError("a bug in the game")

    server.onerror(lambda client, exc: errors.append(exc))
    conn = toad_connect(f"ws://127.0.0.1:{server.port}")
    conn.send("boom")
    conn.send("after")
    events = play_until(lambda ev: len(of_type(ev, toad.pg.MESSAGE)) == 2, "both MESSAGEs")
    assert [e.message for e in of_type(events, toad.pg.MESSAGE)] == ["boom", "after"]
    assert [str(e) for e in errors] == ["a bug in the game"]  # onerror ran, on this thread
    order = [(e.type, getattr(e, "message", None)) for e in events if e.type in (toad.pg.MESSAGE, toad.pg.ERROR)]
    assert order == [(toad.pg.MESSAGE, "boom"), (toad.pg.ERROR, None), (toad.pg.MESSAGE, "after")]
    (error,) = of_type(events, toad.pg.ERROR)
    assert isinstance(error.error, RuntimeError) and error.client is of_type(events, toad.pg.MESSAGE)[0].client
    assert not of_type(events, toad.pg.CLOSE)


# -- sending never blocks a frame -------------------------------------------------------------


SLOW_FRAME = 0.5  # a frame that takes longer than this blocked (a generous margin on a busy machine)


def test_the_host_sending_to_a_player_that_does_not_read_never_blocks_a_frame() -> None:
    with running_server(ping_interval=None) as server:
        toad.pg.attach(server)
        reader = RawClient(server.port)  # never reads a byte
        (opened,) = play_until(lambda ev: bool(of_type(ev, toad.pg.OPEN)), "the OPEN")
        chunk = "x" * (64 << 10)
        slowest = 0.0
        for _ in range(256):  # 16 MiB: far past the socket buffers and max_write_buffer
            start = time.monotonic()
            frame()
            opened.client.send(chunk)
            slowest = max(slowest, time.monotonic() - start)
        assert slowest < SLOW_FRAME
        assert not opened.client.is_open  # dropped: it stopped reading and went past max_write_buffer
        reader.close()


def test_the_guest_sending_to_a_server_that_does_not_read_never_blocks_a_frame(
    toad_server: Callable[..., toad.Server], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = toad_server(ping_interval=None)  # never polled: it stops reading at max_queue_size
    conn = toad.pg.attach(toad_connect(f"ws://127.0.0.1:{server.port}", ping_interval=None))
    chunk = b"x" * (64 << 10)
    slowest = 0.0
    sent = 0
    for _ in range(256):
        start = time.monotonic()
        frame()
        sent += conn.send(chunk)
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < SLOW_FRAME
    assert sent < 256  # the server stopped reading, so send() said no instead of waiting


# -- what the bridge needs, and says when it is misused --------------------------------------


def test_import_toad_does_not_import_pygame() -> None:
    code = "import sys, toad; assert 'pygame' not in sys.modules; import toad.pg; assert 'pygame' in sys.modules"
    env = dict(os.environ, PYGAME_HIDE_SUPPORT_PROMPT="1")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=WAIT)


def test_pump_before_pygame_init_says_to_init_and_takes_nothing(
    raw_server: Callable[[], RawServer], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = raw_server()
    conn = toad.pg.attach(toad_connect(server.url, close_timeout=0.5))
    pygame.display.quit()
    with pytest.raises(toad.UsageError, match=r"call pygame\.init\(\)"):
        toad.pg.pump()
    assert len(conn._queue) == 1  # the OPEN still waits in toad
    pygame.display.init()
    assert [e.type for e in toad_events(frame())] == [toad.pg.OPEN]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_pump_limit_must_be_a_whole_number_of_1_or_more(bad: Any) -> None:
    with pytest.raises(toad.UsageError, match="whole number"):
        toad.pg.pump(bad)


def test_attach_takes_only_a_server_or_a_connection() -> None:
    with pytest.raises(toad.UsageError, match=r"toad\.Server or a toad\.Connection"):
        toad.pg.attach("ws://localhost:8001")  # type: ignore[type-var]


def test_a_blocked_event_type_is_not_posted_but_its_callbacks_run(
    toad_server: Callable[..., toad.Server], toad_connect: Callable[..., toad.Connection]
) -> None:
    server = toad.pg.attach(toad_server())
    heard: list[str] = []
    server.onmessage(lambda client, message: heard.append(message))
    conn = toad_connect(f"ws://127.0.0.1:{server.port}")
    pygame.event.set_blocked(toad.pg.MESSAGE)
    try:
        conn.send("unseen")
        conn.close()
        events = play_until(lambda ev: bool(of_type(ev, toad.pg.CLOSE)), "the CLOSE")
    finally:
        pygame.event.set_allowed(toad.pg.MESSAGE)
    assert [e.type for e in events] == [toad.pg.OPEN, toad.pg.CLOSE]
    assert heard == ["unseen"]


def test_client_of_still_finds_a_player_that_left_until_the_next_poll() -> None:
    # What lets the bridge give a CLOSE its code when onopen returned a Player.
    with running_server() as server:
        server.onopen(lambda client: Player(client, "p"))
        peer = RawClient(server.port)
        (player,) = poll_until(server, server.opens)
        peer.send_frame(0x8, b"\x0f\xa0bye")  # Close, 4000
        assert poll_until(server, server.closes) == [player]
        client = server.client_of(player)
        assert client is player.client and (client.close_code, client.close_reason) == (4000, "bye")
        server.poll()
        assert server.client_of(player) is None
        peer.close()

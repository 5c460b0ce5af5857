"""Hostile clients against a live toad.Server (issue 5): tricklers, half-open sockets, ping floods, readers that stall.

Each test checks one behaviour over real sockets on 127.0.0.1. What
tests/test_server.py already covers is not repeated here: a handshake that
stops half-way, a message exactly at the limit and one byte over (text),
a client that stops reading while one other reads, a flooder of data
messages, the binary limit (tests/test_interop.py).

Time bounds are generous on purpose and say what they separate: the
failures they catch last for seconds or for ever (a server that waits on a
slow peer, or never drops one), not milliseconds.
"""

from __future__ import annotations

import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import wire
from game import EchoGame, open_fds, round_trip
from helpers import RawClient, poll_until, running_server, wait_until

REQUEST = (
    b"GET /lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def small_window_client(port: int) -> socket.socket:
    """A client past its handshake whose receive buffer is tiny, so it fills at once when it stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: it sets the TCP window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(REQUEST)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # one byte at a time: nothing after the head is taken from the socket
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def at_eof_now(sock: socket.socket) -> bool:
    """Whether the peer has closed ``sock`` (a non-blocking socket: a timeout would make recv wait)."""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


# -- a handshake trickled a byte at a time --------------------------------------------


def test_a_client_trickling_its_handshake_is_dropped_at_the_timeout_while_others_are_served() -> None:
    timeout = 1.0
    with EchoGame(handshake_timeout=timeout) as game:
        good = RawClient(game.port)
        trickler = socket.create_connection(("127.0.0.1", game.port), timeout=10)
        trickler.setblocking(False)  # one byte never blocks; at_eof_now must not wait
        connected = time.monotonic()
        sent = trips = 0
        dropped_after = None
        # One byte every 20 ms: the whole request would take over 3 s, three times the timeout.
        while time.monotonic() - connected < 10:
            if at_eof_now(trickler):
                dropped_after = time.monotonic() - connected
                break
            try:
                trickler.send(REQUEST[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                dropped_after = time.monotonic() - connected
                break
            sent += 1
            round_trip(good, f"served while it trickles {trips}")
            trips += 1
            time.sleep(0.02)
        assert dropped_after is not None, "the trickling client was never dropped"
        assert sent < len(REQUEST)
        # Never before the timeout (the clock starts at accept, after our connect);
        # at most a few sweeps (0.25 s each) after it; 3 s of slack for a busy machine.
        assert timeout <= dropped_after < timeout + 3.0
        assert trips >= 10  # the good client kept being answered the whole time
        try:
            assert not trickler.recv(4096, socket.MSG_DONTWAIT).startswith(b"HTTP/1.1 101")
        except ConnectionResetError:
            pass  # dropped with a byte of ours unread: a reset, and no answer either
        trickler.close()
        wait_until(lambda: game.connections() == 1, what="the trickler's socket to be released")
        round_trip(good, "after")
        assert game.healthy() and game.warnings == []
        good.close()


# -- 10,000 half-open TCP connections ---------------------------------------------------

HALF_OPEN_SERVER = """
import resource, sys, threading
import toad

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
server = toad.Server(handshake_timeout=float(sys.argv[1]))
server.onmessage(lambda client, message: client.send(message))
server.start("127.0.0.1", 0, block=False)
print(server.port, flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.is_set():
    server.wait_events(0.05)
    server.poll()
print(server._loop.crashed is None, len(server._loop.channels), flush=True)
server.stop()
"""


def test_ten_thousand_half_open_connections_are_all_dropped_and_a_good_client_is_served_meanwhile() -> None:
    # The server runs in its own process, so each side holds its own 10,000
    # descriptors. Both raise their soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(10_000, hard - 512)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 512)), hard))
    handshake_timeout = 5.0
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_OPEN_SERVER, str(handshake_timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    socks: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        port = int(proc.stdout.readline())
        good = RawClient(port)
        round_trip(good, "hello")
        baseline = open_fds(proc.pid)
        peak = baseline
        for i in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))  # and then say nothing
            if i % 500 == 499:
                peak = max(peak, open_fds(proc.pid))
        # While thousands of them are held, a good client is served.
        round_trip(good, "still served")
        # They were held at once (connecting all of them takes far less than the
        # timeout), not refused or dropped as they came.
        assert peak - baseline >= count // 2
        # Each is dropped at the handshake timeout: every socket sees the end of its stream.
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + handshake_timeout + 20
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(0.5):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(1)
                except ConnectionResetError:
                    data = b""
                assert data == b"", "a half-open connection got an answer"
                selector.unregister(sock)
        assert not selector.get_map(), f"{len(selector.get_map())} half-open connections were never dropped"
        wait_until(lambda: open_fds(proc.pid) == baseline, what="the server's descriptors to return to the baseline")
        round_trip(good, "after")
        good.close()
        proc.stdin.close()
        alive, channels = proc.stdout.readline().split()
        assert alive == "True"  # the network loop never crashed
        assert channels in ("0", "1")  # at most the good client, still closing
    finally:
        selector.close()
        for sock in socks:
            sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- ping floods ------------------------------------------------------------------------


def test_thousands_of_pings_in_one_go_are_each_answered_in_order() -> None:
    count = 5000
    with EchoGame() as game:
        flooder = RawClient(game.port)
        flooder.sock.sendall(b"".join(wire.frame(wire.PING, b"%d" % i) for i in range(count)))
        pongs = [flooder.recv_frame() for _ in range(count)]
        assert pongs == [(wire.PONG, b"%d" % i) for i in range(count)]
        round_trip(flooder, "and a message after them")
        assert game.healthy() and game.warnings == []
        flooder.close()


def test_a_sustained_ping_flood_does_not_starve_other_clients() -> None:
    flood_seconds = 3.0
    ping = wire.frame(wire.PING, b"p" * 125)
    batch = ping * 200
    with EchoGame() as game:
        good = RawClient(game.port)
        flooder = RawClient(game.port)
        sent = [0]
        received = [0]

        def flood() -> None:
            end = time.monotonic() + flood_seconds
            while time.monotonic() < end:
                flooder.sock.sendall(batch)
                sent[0] += 200

        def read_pongs() -> None:
            # Every Pong of a 125-byte Ping is 127 bytes: count bytes, not frames.
            flooder.sock.settimeout(10)
            while received[0] < sent[0] * 127 or sender.is_alive():
                data = flooder.sock.recv(1 << 20)
                if not data:
                    return
                received[0] += len(data)

        sender = threading.Thread(target=flood)
        reader = threading.Thread(target=read_pongs)
        sender.start()
        reader.start()
        trips = 0
        slowest = 0.0
        while sender.is_alive():
            slowest = max(slowest, round_trip(good, f"during the flood {trips}"))
            trips += 1
        sender.join()
        reader.join(10)
        assert received[0] == sent[0] * 127  # the flooder got every Pong
        # A starved client would get nothing for the whole 3 s flood; a few
        # milliseconds each is normal, 1 s leaves room for a loaded machine.
        assert trips >= 10
        assert slowest < 1.0
        assert game.healthy() and game.warnings == []
        good.close()
        flooder.close()


def test_a_ping_flooder_that_never_reads_its_pongs_is_dropped_and_they_never_pile_up() -> None:
    limit = 256 << 10
    ping = wire.frame(wire.PING, b"p" * 125)
    with EchoGame(max_write_buffer=limit) as game:
        good = RawClient(game.port)
        round_trip(good, "hello")
        loop = game.server._loop
        assert loop is not None
        before = set(loop.channels)
        flooder = small_window_client(game.port)
        channel = wait_until(lambda: next(iter(set(loop.channels) - before), None), what="the flooder's channel")

        def flood() -> None:
            batch = ping * 500
            try:
                while True:
                    flooder.sendall(batch)  # never reads a byte
            except OSError:
                pass  # dropped: what should happen

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        most = 0
        deadline = time.monotonic() + 30
        while not channel.closed and time.monotonic() < deadline:
            most = max(most, channel.out_size)
            time.sleep(0.001)
        assert channel.closed, "the flooder that never reads was never dropped"
        # Its Pongs waited in toad's buffer up to max_write_buffer, plus the Pongs
        # for one read (64 KiB of Pings) that found it full; never more.
        assert most <= limit + (64 << 10)
        round_trip(good, "still served")
        flooder.close()
        sender.join(10)
        wait_until(lambda: game.connections() == 1, what="the flooder's socket to be released")
        assert game.healthy() and game.warnings == []
        good.close()


# -- the size limit: bytes of UTF-8, and fragments ---------------------------------------


def test_the_size_limit_counts_bytes_of_utf8_not_characters() -> None:
    with EchoGame(max_message_size=1000) as game:
        at_limit = RawClient(game.port)
        round_trip(at_limit, "é" * 500)  # 500 characters, 1000 bytes: delivered
        over = RawClient(game.port)
        over.send_frame(0x1, ("é" * 500 + "x").encode())  # 501 characters, 1001 bytes
        assert over.recv_close()[0] == 1009
        at_limit.close()
        over.close()


@pytest.mark.parametrize("opcode", [0x1, 0x2], ids=["text", "binary"])
def test_fragments_adding_up_exactly_to_the_limit_are_delivered(opcode: int) -> None:
    with EchoGame(max_message_size=1000) as game:
        raw = RawClient(game.port)
        raw.send_frame(opcode, b"a" * 400, fin=False)
        raw.send_frame(0x0, b"b" * 400, fin=False)
        raw.send_frame(0x0, b"c" * 200)
        raw.sock.settimeout(5)
        assert raw.recv_frame() == (opcode, b"a" * 400 + b"b" * 400 + b"c" * 200)
        raw.close()


@pytest.mark.parametrize("opcode", [0x1, 0x2], ids=["text", "binary"])
def test_fragments_adding_up_to_one_byte_over_the_limit_close_with_1009(opcode: int) -> None:
    with EchoGame(max_message_size=1000) as game:
        raw = RawClient(game.port)
        raw.send_frame(opcode, b"a" * 400, fin=False)
        raw.send_frame(0x0, b"b" * 400, fin=False)
        raw.send_frame(0x0, b"c" * 201)
        raw.sock.settimeout(5)
        assert raw.recv_close()[0] == 1009
        raw.close()


# -- a 30 Hz broadcast while one client never reads -------------------------------------

_STAMP = struct.Struct("!QQ")


def test_a_30_hz_broadcast_reaches_19_readers_on_time_while_one_that_never_reads_is_dropped() -> None:
    size = 32 << 10
    limit = 256 << 10
    # No keepalive: the readers never send, and a Ping would be one more frame to parse.
    with running_server(max_write_buffer=limit, ping_interval=None) as server:  # this thread is the game loop
        readers = [RawClient(server.port) for _ in range(19)]
        stalled = small_window_client(server.port)
        poll_until(server, lambda: len(server.clients) == 20)
        stalled_port = stalled.getsockname()[1]
        (slow,) = [c for c in server.clients if c.address[1] == stalled_port]

        ticks: dict[int, list[int]] = {i: [] for i in range(len(readers))}
        worst_lag = [0]
        done = threading.Event()

        def read() -> None:
            selector = selectors.DefaultSelector()
            buffers = {}
            for i, raw in enumerate(readers):
                raw.sock.setblocking(False)
                selector.register(raw.sock, selectors.EVENT_READ, i)
                buffers[i] = bytearray(raw.buffer)
            while not done.is_set():
                for key, _ in selector.select(0.05):
                    i = key.data
                    buf = buffers[i]
                    buf += key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                    now = time.monotonic_ns()
                    while len(buf) >= 4 + _STAMP.size:
                        (n,) = struct.unpack_from("!H", buf, 2)  # 16-bit lengths: 32 KiB payloads
                        if len(buf) < 4 + n:
                            break
                        tick, stamp = _STAMP.unpack_from(buf, 4)
                        ticks[i].append(tick)
                        worst_lag[0] = max(worst_lag[0], now - stamp)
                        del buf[: 4 + n]

        reader = threading.Thread(target=read)
        reader.start()
        period = 1 / 30
        tick = 0
        slowest_broadcast = 0.0
        dropped_at = None
        begun = next_tick = time.monotonic()
        try:
            # Until the stalled client is dropped, then one more second (30 ticks); 30 s at most.
            while time.monotonic() - begun < 30 and (dropped_at is None or tick < dropped_at + 30):
                server.poll()
                if dropped_at is None and slow.close_code is not None:
                    dropped_at = tick
                payload = _STAMP.pack(tick, time.monotonic_ns()) + bytes(size - _STAMP.size)
                started = time.monotonic()
                server.broadcast(payload)
                slowest_broadcast = max(slowest_broadcast, time.monotonic() - started)
                tick += 1
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))
            # Let the readers take the last ticks.
            wait_until(lambda: all(len(t) == tick for t in ticks.values()), what="the readers to get every tick")
        finally:
            done.set()
            reader.join(10)
        assert dropped_at is not None, "the client that never reads was never dropped"
        assert slow.close_code == 1006
        assert len(server.clients) == 19
        for got in ticks.values():
            assert got == list(range(tick))  # every tick, in order, before and after the drop
        # A broadcast only copies into buffers, and a reader is never held up by
        # the stalled one: both would otherwise last as long as the stall (seconds).
        assert slowest_broadcast < 0.5
        assert worst_lag[0] < 1e9
        for raw in readers:
            raw.close()
        stalled.close()

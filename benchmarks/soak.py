"""Soak test: many clients joining, chatting and leaving against one toad server, for a long time.

    python benchmarks/soak.py                              # 500 clients for 10 minutes
    python benchmarks/soak.py --clients 200 --seconds 120
    python benchmarks/soak.py --quick                      # 50 clients for 8 s (what CI runs)

The server is a :class:`toad.Server` with ``block=False`` in its own process
(this file with ``--serve``): a lobby whose game loop polls 30 times a second
and broadcasts every chat message to the room its sender joined (the room is
the URL path), the sender included. It answers ``stats`` on its stdin with a
JSON line of its counters, and ``quit`` with its final counters.

The load generator is this process: raw non-blocking sockets on one selector,
frames built by hand (see ``rawpeers.py`` and ``loadgen.py``), so it costs
little and reports its own CPU share and how late its timers fired. About
``--clients`` clients are connected at any time. Each one joins a random room, chats a few times a
second for a random lifetime, then leaves in one of three ways:

- cleanly (60 %): it waits for the echo of everything it sent, sends Close
  1000, reads the server's Close and the end of the stream;
- it vanishes (25 %): the socket is closed without a Close frame, half of
  them with a reset (SO_LINGER 0);
- it sends garbage (15 %): a frame toad must fail (reserved bits, a reserved
  opcode, an unmasked frame, invalid UTF-8, a length over the limit, random
  bytes), and checks it is closed with the close code RFC 6455 asks for.

A new client replaces each one that leaves. Every client checks that each of
its own messages comes back, in order; one waiting more than 5 s is a stall.

Memory and descriptors: a warm-up runs the same workload first, so the
server's tables reach their working size; then every client leaves and the
server's descriptors (``/proc/PID/fd``), Python heap (``sys.getallocatedblocks()``
after a full garbage collection) and RSS (``VmRSS``) are read with nobody
connected: the start. The same reading after the run, once every client left
and a few seconds passed, is the end. The run fails (exit status 1) when:

- the descriptors are not back to the start (within 2: a slack for a socket
  the kernel has not finished with, never for a leak that grows with the run);
- the Python heap holds more than 1 % (at least 1,000) more blocks than at
  the start: the leak detector. A 10-minute run makes some 18,000
  connections and 600,000 chat messages, so one object left behind per
  connection, or per 600 messages, is caught; a leaked connection would
  leave dozens (its channel, protocol, client, buffers). Short runs end
  within a few blocks of their start;
- RSS grew by more than 10 MiB. RSS also counts what the heap check does
  not: garbage waiting for the cyclic garbage collector, and what the C
  allocator keeps after a peak. With 500 clients for 2 minutes, a server
  that frees each closed connection at once (by reference counting) stays
  within 0.1 MiB of its start; one that leaves each closed connection in
  reference cycles (see the last test of tests/test_soak.py) grew 8.6 MiB
  in those 2 minutes and 16 MiB in 10. A 10-minute run makes some 18,000
  connections, so 10 MiB is about 580 bytes per connection;
- the server logged a warning or an error, or its network loop crashed;
- a client saw something it should not: a refused handshake, a close it did
  not ask for, a message lost, reordered or unanswered, a stall, or the
  wrong close code for its garbage;
- the server kept a connection's TCP stream open for over a second after
  the closing handshake (RFC 6455 section 7.1.1: the server closes it at
  once; a late end holds a descriptor, and the client, up to close_timeout).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import rawpeers  # noqa: E402
from rawpeers import CONNECTING, FIRST_FREE_STATE, OPEN, OPENING  # noqa: E402

FD_TOLERANCE = 2
BLOCKS_GROWTH = 0.01  # the Python heap at the end: at most 1 % more blocks than at the start...
BLOCKS_FLOOR = 1000  # ...or this many, for the small heap of a short run
RSS_GROWTH_LIMIT = 10 << 20


def blocks_limit(start: int) -> int:
    """How many more Python heap blocks the server may hold at the end than at the start."""
    return max(BLOCKS_FLOOR, int(start * BLOCKS_GROWTH))


STALL_AFTER = 5.0  # seconds a client's message may wait for its echo before the run fails
# Seconds from the server's Close frame to the end of its TCP stream past which the
# end is late: RFC 6455 section 7.1.1 has the server close TCP right after the
# closing handshake; toad's close_timeout (5 s) is the sign it waited instead.
LATE_END = 1.0
MAX_MESSAGE_SIZE = 64 << 10  # the server's limit: small, so a too-big header is cheap to send

# What the clients do when they leave, and how often.
BEHAVIOURS = (("clean", 0.60), ("vanish", 0.25), ("garbage", 0.15))
FILLER = b"the quick brown fox jumps over the lazy dog, and the lobby chats on " * 2


# -- the server (python benchmarks/soak.py --serve) ---------------------------------------


def serve(max_message_size: int) -> None:
    """Run the lobby server until ``quit`` (or the end of stdin); its counters go to stdout as JSON."""
    import gc
    import logging
    import queue

    import toad

    warnings: list[str] = []
    infos: collections.Counter[str] = collections.Counter()

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(f"{record.levelname}: {record.getMessage()}")
            else:
                infos[record.getMessage().split(" ", 1)[0]] += 1

    log = logging.getLogger("toad")
    log.setLevel(logging.INFO)
    log.addHandler(Recorder())
    log.propagate = False

    server = toad.Server(max_message_size=max_message_size)
    rooms: dict[str, set[toad.Client]] = collections.defaultdict(set)
    room_of: dict[int, str] = {}
    counts: collections.Counter[str] = collections.Counter()
    close_codes: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    ticks = {"late": 0, "max_ms": 0.0}

    @server.onopen
    def onopen(client: toad.Client) -> None:
        counts["opens"] += 1
        room_of[client.id] = client.path
        rooms[client.path].add(client)

    @server.onmessage
    def onmessage(client: toad.Client, message: str | bytes) -> None:
        counts["messages_in"] += 1
        counts["bytes_in"] += len(message)
        room = rooms.get(room_of.get(client.id, ""))
        if room:
            counts["deliveries"] += server.broadcast(message, to=room)

    @server.onerror
    def onerror(client: toad.Client, exc: Exception) -> None:
        errors[type(exc).__name__] += 1

    @server.onclose
    def onclose(client: toad.Client) -> None:
        counts["closes"] += 1
        close_codes[str(client.close_code)] += 1
        room = room_of.pop(client.id, None)
        if room is not None:
            rooms[room].discard(client)
            if not rooms[room]:
                del rooms[room]

    def stats() -> dict[str, Any]:
        loop = server._loop
        return {
            **counts,
            "close_codes": dict(close_codes),
            "errors": dict(errors),
            "warnings": len(warnings),
            "warning_samples": warnings[:5],
            "infos": dict(infos),
            "crashed": repr(loop.crashed) if loop is not None and loop.crashed is not None else None,
            "clients": len(server.clients),
            "channels": len(loop.channels) if loop is not None else 0,
            "late_ticks": ticks["late"],
            "max_tick_ms": round(ticks["max_ms"], 1),
        }

    commands: queue.Queue[str] = queue.Queue()

    def read_commands() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("quit")

    server.start("127.0.0.1", 0, block=False)
    threading.Thread(target=read_commands, daemon=True).start()
    print(f"ready {server.port}", flush=True)
    period = 1 / 30
    next_tick = time.monotonic()
    while True:
        started = time.monotonic()
        server.poll()
        command = None
        while not commands.empty():
            command = commands.get()
            if command == "stats":
                print(json.dumps(stats()), flush=True)
            elif command == "heap":
                # A full collection first, so only what is still referenced counts; only
                # at the start and the end: collections during the run would change it.
                gc.collect()
                print(json.dumps({"blocks": sys.getallocatedblocks()}), flush=True)
            elif command == "quit":
                break
        if command == "quit":
            break
        now = time.monotonic()
        ticks["max_ms"] = max(ticks["max_ms"], (now - started) * 1000)
        next_tick += period
        if next_tick > now:
            time.sleep(next_tick - now)
        else:
            ticks["late"] += next_tick < now - period  # a whole tick behind
            next_tick = now
    server.stop()
    print(json.dumps(stats()), flush=True)


# -- the server's process, seen from here -------------------------------------------------


class ServerProcess:
    """The lobby server in its own process; ``stats()`` asks it for its counters."""

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", "--max-message-size", str(max_message_size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()
        line = self._readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise RuntimeError(f"the soak server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the soak server exited (status {self.proc.poll()})")
        return line

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        with self.lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            return json.loads(self._readline())  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def heap(self) -> int:
        """The Python heap's allocated blocks, after a full garbage collection."""
        return int(self._ask("heap")["blocks"])

    def quit(self, timeout: float = 30.0) -> dict[str, Any]:
        final = self._ask("quit")
        self.proc.wait(timeout)
        return final

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss(self) -> int:
        return loadgen.proc_rss(self.pid)


# -- the load generator -------------------------------------------------------------------

# A client's states past rawpeers' CONNECTING, OPENING and OPEN; DONE is its CLOSED.
DRAINING, CLOSING, KICKED, WAIT_EOF = range(FIRST_FREE_STATE, FIRST_FREE_STATE + 4)
DONE = rawpeers.CLOSED
_CLOSE_1000 = loadgen.masked_frame(0x8, struct.pack("!H", 1000))


def _garbage(kind: str, rng: random.Random) -> tuple[bytes, int]:
    """Bytes toad must fail, and the close code RFC 6455 asks for."""
    if kind == "rsv":  # section 5.2: reserved bits without an extension
        frame = bytearray(loadgen.masked_frame(0x1, b"hello"))
        frame[0] |= 0x40
        return bytes(frame), 1002
    if kind == "opcode":  # section 5.2: a reserved opcode
        return loadgen.masked_frame(0x3, b"hello"), 1002
    if kind == "unmasked":  # section 5.1: a client frame without a mask
        return bytes([0x81, 5]) + b"hello", 1002
    if kind == "utf8":  # section 8.1: a text message that is not UTF-8
        return loadgen.masked_frame(0x1, b"caf\xc3(\xff"), 1007
    if kind == "toobig":  # a header announcing more than the server's max_message_size
        return struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 20) + b"\0" * 4 + b"x" * 100, 1009
    # Random bytes, the first with a reserved bit set so that the outcome is known.
    junk = bytearray(rng.randbytes(32))
    junk[0] |= 0x40
    return bytes(junk), 1002


GARBAGE_KINDS = ("rsv", "opcode", "unmasked", "utf8", "toobig", "random")


class Peer(rawpeers.RawPeer):
    """One soak client: its room, how it will leave, and its chat messages still awaiting their echo."""

    __slots__ = (
        "behaviour",
        "cid",
        "close_seen",
        "expect_code",
        "leave_on_open",
        "pending",
        "prefix",
        "room",
        "seq",
        "stalled",
    )

    def __init__(self, cid: int, room: str, behaviour: str) -> None:
        super().__init__()
        self.cid = cid
        self.room = room
        self.behaviour = behaviour
        self.prefix = b"%d " % cid
        self.seq = 0
        self.pending: collections.deque[tuple[int, float]] = collections.deque()
        self.expect_code = 0
        self.stalled = False
        self.leave_on_open = False
        self.close_seen = 0.0  # when the server's Close frame arrived


@dataclass
class LoadStats:
    started: int = 0
    opened: int = 0
    finished: collections.Counter[str] = field(default_factory=collections.Counter)
    kicked: collections.Counter[str] = field(default_factory=collections.Counter)
    chats_sent: int = 0
    echoes: int = 0
    room_messages: int = 0
    bytes_in: int = 0
    abandoned: int = 0  # messages in flight when their sender vanished or sent garbage (not checked)
    late_ends: list[float] = field(default_factory=list)  # seconds from the server's Close to its TCP end, when late
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    timer_lags: list[float] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0


class LoadGen(rawpeers.RawPeers[Peer]):
    """About ``clients`` WebSocket clients on one selector, chatting in rooms and churning."""

    def __init__(
        self,
        port: int,
        clients: int,
        *,
        rate: float = 2.0,
        room_size: int = 10,
        lifetime: tuple[float, float] = (5.0, 30.0),
        seed: int = 6455,
    ) -> None:
        super().__init__(port)
        self.target = clients
        self.rate = rate
        self.rooms = max(1, clients // room_size)
        self.lifetime = lifetime
        self.rng = random.Random(seed)
        self.timers: list[tuple[float, int, Peer, str]] = []
        self.order = 0
        self.next_cid = 0
        self.active = 0  # peers not DONE
        self.connected = 0  # peers past the handshake and not yet leaving
        self.replacing = False
        self.stats = LoadStats()

    # -- running ------------------------------------------------------------------

    def run(self, seconds: float, ramp: float = 2.0) -> LoadStats:
        """Start ``clients`` clients over ``ramp`` seconds, churn for ``seconds``, then everyone leaves."""
        self.stats = stats = LoadStats()
        cpu0, wall0 = time.process_time(), time.monotonic()
        self.replacing = True
        now = time.monotonic()
        for _ in range(self.target):
            self.start_peer(now + self.rng.uniform(0, ramp))
        self._serve(until=now + seconds)
        self.replacing = False
        for peer in self._peers():
            if peer.sock is None:
                self.cancel(peer)  # its start was still to come
            elif peer.state == OPEN:
                self.leave_cleanly(peer)
            elif peer.state in (CONNECTING, OPENING):
                peer.leave_on_open = True
        self._serve(until=time.monotonic() + 30.0, stop_when_idle=True)
        for peer in self._peers():
            self.error(peer, "still connected 30 s after the end")
            self.finish(peer, "forced")
        stats.cpu = time.process_time() - cpu0
        stats.wall = time.monotonic() - wall0
        return stats

    def _peers(self) -> list[Peer]:
        peers = [key.data for key in self.selector.get_map().values()]
        peers += [peer for _, _, peer, action in self.timers if action == "start" and peer.state == CONNECTING]
        return [p for p in dict.fromkeys(peers) if p.state != DONE]

    def _serve(self, until: float, stop_when_idle: bool = False) -> None:
        timers = self.timers
        next_check = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                when, _, peer, action = heapq.heappop(timers)
                if peer.state == DONE:
                    continue
                if action == "chat":
                    self.stats.timer_lags.append(now - when)
                getattr(self, "on_" + action)(peer)
            if now >= until or (stop_when_idle and not self.active):
                return
            if now >= next_check:
                next_check = now + 1.0
                self.check_stalls(now)
            timeout = min(0.05, until - now)
            if timers:
                timeout = min(timeout, max(0.0, timers[0][0] - now))
            self.poll(timeout)

    def later(self, when: float, peer: Peer, action: str) -> None:
        self.order += 1
        heapq.heappush(self.timers, (when, self.order, peer, action))

    def error(self, peer: Peer, what: str) -> None:
        kind = what.split(":", 1)[0]
        self.stats.errors[kind] += 1
        if len(self.stats.error_samples) < 20:
            self.stats.error_samples.append(f"client {peer.cid} ({peer.behaviour}): {what}")

    # -- a client's life ----------------------------------------------------------

    def start_peer(self, when: float) -> None:
        self.next_cid += 1
        roll = self.rng.random()
        behaviour = BEHAVIOURS[-1][0]
        for name, share in BEHAVIOURS:
            if roll < share:
                behaviour = name
                break
            roll -= share
        peer = Peer(self.next_cid, f"/room/{self.rng.randrange(self.rooms)}", behaviour)
        self.active += 1
        self.later(when, peer, "start")

    def on_start(self, peer: Peer) -> None:
        self.stats.started += 1
        if self.connect(peer):
            self.later(time.monotonic() + 10.0, peer, "handshake_deadline")

    def on_handshake_deadline(self, peer: Peer) -> None:
        if peer.state in (CONNECTING, OPENING):
            self.error(peer, "handshake: no 101 within 10 s")
            self.finish(peer, "handshake-timeout")

    # -- the socket's hooks (see rawpeers.RawPeers) ---------------------------------

    def handshake(self, peer: Peer) -> bytes:
        """The handshake's request: the URL path is the client's room."""
        return loadgen.handshake_request(self.port, peer.room)

    def on_connect_failed(self, peer: Peer, err: int) -> None:
        self.error(peer, f"connect: {os.strerror(err)}")
        self.finish(peer, "connect-failed")

    def on_refused(self, peer: Peer, reply: bytes) -> None:
        self.error(peer, f"handshake: refused {reply[:40]!r}")
        self.finish(peer, "refused")

    def on_broken(self, peer: Peer, where: str, exc: OSError) -> None:
        self.lost(peer, f"{where}: {exc}")

    def on_eof(self, peer: Peer) -> None:
        """The end of the stream: the last step of a closing handshake (on time or late), else a loss."""
        if peer.state == WAIT_EOF:
            waited = time.monotonic() - peer.close_seen
            if waited > LATE_END:
                self.stats.late_ends.append(waited)
            self.finish(peer, "garbage" if peer.expect_code else "clean")
        else:
            self.lost(peer, "eof: the server closed the connection without a Close frame")

    def on_data(self, peer: Peer, data: bytes) -> None:
        self.stats.bytes_in += len(data)

    def on_masked_frame(self, peer: Peer) -> None:
        self.error(peer, "frame: a masked frame from the server")

    def on_frame(self, peer: Peer, b0: int, payload: bytes) -> None:
        """Check an echo of the client's own message (in order) or count a room message; answer Ping and Close."""
        stats = self.stats
        opcode = b0 & 0x0F
        if opcode in (1, 2):
            if not payload.startswith(peer.prefix):
                stats.room_messages += 1
                return
            seq = int(payload[len(peer.prefix) : payload.index(b" ", len(peer.prefix))])
            pending = peer.pending
            if not pending or pending[0][0] != seq:
                self.error(peer, f"order: echo {seq} arrived, {pending[0][0] if pending else None} was expected")
                return
            stats.echoes += 1
            stats.latencies.append(time.monotonic() - pending.popleft()[1])
            if peer.state == DRAINING and not pending:
                self.send_close(peer)
        elif opcode == 9:
            if peer.state in (OPEN, DRAINING, KICKED):
                self.send(peer, rawpeers.pong(payload))
        elif opcode == 8:
            code = rawpeers.close_code(payload)
            if peer.state == CLOSING:
                if code != 1000:
                    self.error(peer, f"close: the server answered our 1000 with {code}")
            elif peer.state == KICKED:
                if code == peer.expect_code:
                    stats.kicked[str(code)] += 1
                else:
                    self.error(peer, f"close: garbage closed with {code}, RFC 6455 says {peer.expect_code}")
                self.send(peer, rawpeers.close_reply(payload))
            else:
                self.error(peer, f"close: unexpected Close {code} {payload[2:]!r}")
                self.send(peer, rawpeers.close_reply(payload))
            self.set_state(peer, WAIT_EOF)
            peer.close_seen = time.monotonic()
            self.later(time.monotonic() + 10.0, peer, "eof_deadline")
        elif opcode != 0xA:
            self.error(peer, f"frame: unexpected opcode {opcode}")

    def set_state(self, peer: Peer, state: int) -> None:
        # Keeps count of the clients that are connected and chatting.
        self.connected += (state == OPEN) - (peer.state == OPEN)
        peer.state = state

    def on_open(self, peer: Peer) -> None:
        self.set_state(peer, OPEN)
        self.stats.opened += 1
        now = time.monotonic()
        if peer.leave_on_open:
            self.leave_cleanly(peer)
            return
        life = self.rng.uniform(*self.lifetime)
        self.later(now + self.rng.uniform(0, 1 / self.rate), peer, "chat")
        if peer.behaviour == "garbage":
            self.later(now + life * self.rng.uniform(0.3, 1.0), peer, "garbage")
        else:
            self.later(now + life, peer, "leave")

    def on_chat(self, peer: Peer) -> None:
        if peer.state != OPEN:
            return
        peer.seq += 1
        n = self.rng.randrange(10, len(FILLER))
        payload = peer.prefix + b"%d " % peer.seq + FILLER[:n]
        peer.pending.append((peer.seq, time.monotonic()))
        self.stats.chats_sent += 1
        self.send(peer, loadgen.masked_frame(0x1, payload))
        self.later(time.monotonic() + self.rng.uniform(0.5, 1.5) / self.rate, peer, "chat")

    def on_leave(self, peer: Peer) -> None:
        if peer.state != OPEN:
            return
        if peer.behaviour == "vanish":
            sock = peer.sock
            assert sock is not None
            if peer.cid % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
            self.finish(peer, "vanish")
        else:
            self.leave_cleanly(peer)

    def leave_cleanly(self, peer: Peer) -> None:
        self.set_state(peer, DRAINING)
        if peer.pending:
            self.later(time.monotonic() + STALL_AFTER, peer, "drain_deadline")
        else:
            self.send_close(peer)

    def on_drain_deadline(self, peer: Peer) -> None:
        if peer.state == DRAINING:
            self.error(peer, f"unanswered: {len(peer.pending)} messages never came back")
            self.send_close(peer)

    def send_close(self, peer: Peer) -> None:
        self.set_state(peer, CLOSING)
        self.send(peer, _CLOSE_1000)
        self.later(time.monotonic() + 10.0, peer, "eof_deadline")

    def on_garbage(self, peer: Peer) -> None:
        if peer.state != OPEN:
            return
        kind = GARBAGE_KINDS[peer.cid % len(GARBAGE_KINDS)]
        data, peer.expect_code = _garbage(kind, self.rng)
        self.set_state(peer, KICKED)
        self.send(peer, data)
        self.later(time.monotonic() + 10.0, peer, "eof_deadline")

    def on_eof_deadline(self, peer: Peer) -> None:
        if peer.state in (CLOSING, KICKED, WAIT_EOF):
            self.error(peer, "closing: the server did not close within 10 s")
            self.finish(peer, "close-timeout")

    def lost(self, peer: Peer, what: str) -> None:
        self.error(peer, what)
        self.finish(peer, "lost")

    def check_stalls(self, now: float) -> None:
        for key in list(self.selector.get_map().values()):
            peer = key.data
            if peer.state in (OPEN, DRAINING) and peer.pending and not peer.stalled:
                if now - peer.pending[0][1] > STALL_AFTER:
                    peer.stalled = True
                    self.error(peer, f"stall: message {peer.pending[0][0]} waited over {STALL_AFTER:g} s")

    def finish(self, peer: Peer, how: str) -> None:
        if peer.state == DONE:
            return
        self.set_state(peer, DONE)
        self.active -= 1
        self.stats.finished[how] += 1
        if how in ("vanish", "garbage"):
            self.stats.abandoned += len(peer.pending)  # on purpose: not checked
        self.release(peer)
        if self.replacing:
            self.start_peer(time.monotonic())

    def cancel(self, peer: Peer) -> None:
        peer.state = DONE
        self.active -= 1


# -- the run --------------------------------------------------------------------------------


@dataclass
class Sample:
    label: str
    t: float
    fds: int
    rss: int
    connected: int
    server: dict[str, Any]


@dataclass
class Result:
    clients: int
    seconds: float
    room_size: int
    samples: list[Sample]
    start: Sample
    end: Sample
    warmup: LoadStats
    load: LoadStats
    final: dict[str, Any]
    settle_s: float
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


def _wait_empty(server: ServerProcess, timeout: float) -> float:
    """Wait until the server holds no connection; how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.stats()["channels"] == 0:
            break
        time.sleep(0.1)
    return time.monotonic() - started


def run(
    clients: int = 500,
    seconds: float = 600.0,
    *,
    warmup: float = 30.0,
    rate: float = 2.0,
    room_size: int = 10,
    lifetime: tuple[float, float] = (5.0, 30.0),
    sample_every: float = 30.0,
    settle: float = 3.0,
    progress: bool = False,
) -> Result:
    """One soak: warm up, measure, churn for ``seconds``, everyone leaves, measure again."""
    server = ServerProcess()
    samples: list[Sample] = []
    try:
        gen = LoadGen(server.port, clients, rate=rate, room_size=room_size, lifetime=lifetime)
        warm = gen.run(warmup, ramp=min(2.0, warmup / 2))
        _wait_empty(server, 30.0)
        time.sleep(settle)
        t0 = time.monotonic()

        def sample(label: str, heap: bool = False) -> Sample:
            stats = server.stats()
            if heap:
                stats["blocks"] = server.heap()
            s = Sample(label, time.monotonic() - t0, server.fds(), server.rss(), gen.connected, stats)
            samples.append(s)
            if progress:
                print(_row(s), flush=True)
            return s

        if progress:
            print(_header(), flush=True)
        start = sample("start", heap=True)
        stop = threading.Event()

        def sampler() -> None:
            while not stop.wait(sample_every):
                sample("run")

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        load = gen.run(seconds, ramp=min(2.0, seconds / 4))
        stop.set()
        thread.join()
        sample("all left")
        settle_s = _wait_empty(server, 30.0)
        time.sleep(settle)
        end = sample("end", heap=True)
        final = server.quit()
    finally:
        server.kill()
    failures = judge(start, end, warm, load, final)
    return Result(clients, seconds, room_size, samples, start, end, warm, load, final, settle_s + settle, failures)


def judge(start: Sample, end: Sample, warm: LoadStats, load: LoadStats, final: dict[str, Any]) -> list[str]:
    failures = []
    if abs(end.fds - start.fds) > FD_TOLERANCE:
        failures.append(f"file descriptors: {start.fds} at the start, {end.fds} at the end")
    blocks0, blocks1 = start.server["blocks"], end.server["blocks"]
    if blocks1 - blocks0 > blocks_limit(blocks0):
        failures.append(f"memory: the Python heap grew from {blocks0} to {blocks1} blocks (a leak)")
    if end.rss - start.rss > RSS_GROWTH_LIMIT:
        failures.append(
            f"memory: RSS grew by {(end.rss - start.rss) / 2**20:.1f} MiB (limit {RSS_GROWTH_LIMIT >> 20} MiB)"
        )
    if final.get("crashed"):
        failures.append(f"the server's network loop crashed: {final['crashed']}")
    if final.get("warnings"):
        failures.append(f"the server logged {final['warnings']} warnings/errors: {final['warning_samples']}")
    expected = {"ProtocolError", "MessageTooBig", "ConnectionLost"}
    unexpected = {k: v for k, v in final.get("errors", {}).items() if k not in expected}
    if unexpected:
        failures.append(f"the server's onerror saw unexpected errors: {unexpected}")
    slow = final.get("infos", {}).get("dropping", 0)
    if slow:
        failures.append(f"the server dropped {slow} clients as slow readers (they all read)")
    for name, stats in (("warm-up", warm), ("run", load)):
        if stats.errors:
            failures.append(f"{name}: clients saw {dict(stats.errors)}, e.g. {stats.error_samples[:5]}")
        if stats.late_ends:
            failures.append(
                f"{name}: after {len(stats.late_ends)} closing handshakes the server ended TCP late "
                f"(up to {max(stats.late_ends):.1f} s; RFC 6455 7.1.1: at once)"
            )
    return failures


# -- the report -----------------------------------------------------------------------------


def _header() -> str:
    return (
        f"{'when':<9}{'t (s)':>7}{'clients':>9}{'fds':>7}{'RSS MiB':>9}{'blocks':>9}"
        f"{'msgs in':>10}{'delivered':>11}{'opens':>8}{'closes':>8}{'warn':>6}"
    )


def _row(s: Sample) -> str:
    srv = s.server
    return (
        f"{s.label:<9}{s.t:>7.0f}{s.connected:>9}{s.fds:>7}{s.rss / 2**20:>9.1f}{srv.get('blocks', ''):>9}"
        f"{srv.get('messages_in', 0):>10}{srv.get('deliveries', 0):>11}"
        f"{srv.get('opens', 0):>8}{srv.get('closes', 0):>8}{srv.get('warnings', 0):>6}"
    )


def report(result: Result) -> str:
    load, final = result.load, result.final
    lat = load.latencies
    lags = load.timer_lags
    lines = [
        "",
        f"soak: {result.clients} clients for {result.seconds:g} s "
        f"(rooms of about {result.room_size}; each chat message is broadcast to its room, the sender included)",
        "",
        _header(),
        *(_row(s) for s in result.samples),
        "",
        f"descriptors: {result.start.fds} -> {result.end.fds} (tolerance {FD_TOLERANCE}); "
        f"Python heap: {result.start.server['blocks']} -> {result.end.server['blocks']} blocks "
        f"(limit +{blocks_limit(result.start.server['blocks'])}); "
        f"RSS: {result.start.rss / 2**20:.1f} -> {result.end.rss / 2**20:.1f} MiB "
        f"({(result.end.rss - result.start.rss) / 2**20:+.1f} MiB, limit +{RSS_GROWTH_LIMIT >> 20}); "
        f"peak RSS {max(s.rss for s in result.samples) / 2**20:.1f} MiB; "
        f"end read {result.settle_s:.1f} s after everyone left",
        f"server: {final.get('opens', 0)} opens, {final.get('closes', 0)} closes {final.get('close_codes')}, "
        f"{final.get('messages_in', 0)} messages in, {final.get('deliveries', 0)} delivered; "
        f"onerror {final.get('errors')}; warnings/errors logged: {final.get('warnings')}; "
        f"crashed: {final.get('crashed')}; game ticks a whole tick late: {final.get('late_ticks')}, "
        f"longest tick {final.get('max_tick_ms')} ms",
        f"clients: {load.started} started, {load.opened} opened, left {dict(load.finished)}, "
        f"garbage closed with {dict(load.kicked)}; {load.chats_sent} chats sent, {load.echoes} echoes back, "
        f"{load.room_messages} room messages, {load.abandoned} in flight when their sender vanished or sent garbage",
        f"echo latency: p50 {loadgen.percentile(lat, 0.5) * 1e3:.1f} ms, p99 {loadgen.percentile(lat, 0.99) * 1e3:.1f}"
        f" ms, max {max(lat, default=float('nan')) * 1e3:.1f} ms (the server ticks at 30 Hz)",
        f"load generator: {load.cpu / load.wall:.0%} of a core; its timers fired late by p99 "
        f"{loadgen.percentile(lags, 0.99) * 1e3:.1f} ms, max {max(lags, default=float('nan')) * 1e3:.1f} ms",
        f"errors seen by clients: {dict(load.errors) or 'none'} (warm-up: {dict(result.warmup.errors) or 'none'}); "
        f"TCP ended over {LATE_END:g} s after the server's Close: {len(load.late_ends)} times"
        + (f" (up to {max(load.late_ends):.1f} s)" if load.late_ends else ""),
    ]
    if load.cpu / load.wall > 0.85 or loadgen.percentile(lags, 0.99) > 0.1:
        lines.append("WARNING: the load generator was near its limit; the figures may reflect it, not the server")
    lines.append("")
    lines.append("PASS" if result.ok else "FAIL:\n  " + "\n  ".join(result.failures))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500, help="clients connected at any time (default 500)")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the churn lasts (default 600)")
    parser.add_argument("--quick", action="store_true", help="50 clients for 8 s, short lives: a smoke run")
    parser.add_argument("--rate", type=float, default=2.0, help="chat messages a second per client (default 2)")
    parser.add_argument("--room-size", type=int, default=10, help="clients per room (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (default 30; 2 with --quick)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-message-size", type=int, default=MAX_MESSAGE_SIZE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.max_message_size)
        return 0
    if args.quick:
        options: dict[str, Any] = {"clients": 50, "seconds": 8.0, "warmup": 2.0, "lifetime": (1.0, 4.0)}
        options.update(sample_every=2.0, settle=1.0)
    else:
        options = {"clients": args.clients, "seconds": args.seconds, "warmup": 30.0}
        options["sample_every"] = max(1.0, min(30.0, args.seconds / 20))
    if args.warmup is not None:
        options["warmup"] = args.warmup
    result = run(rate=args.rate, room_size=args.room_size, progress=True, **options)
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

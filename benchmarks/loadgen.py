"""A load generator that costs as little as a Python program can: raw sockets, frames built in advance.

Every WebSocket server under test gets the same client: its opening handshake
is one prepared request, its frames are masked once before the clock starts
(with a real, non-zero key, so each server still unmasks), and replies are
counted by their length instead of parsed, since each workload knows exactly
what comes back. The raw TCP floor gets the same loops without the framing.

Each workload returns a dict of figures, including ``loadgen_cpu``: the share
of one core the load generator itself used, to show it was not the bottleneck.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import statistics
import struct
import time
from typing import Any

_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
_MASK = b"\x37\xfa\x21\x3d"
_STAMP = struct.Struct("!QQ")


def handshake_request(port: int, path: str = "/") -> bytes:
    """The opening handshake's request (RFC 6455 section 4.1) for ``path`` on ``127.0.0.1:port``, fixed key."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {_KEY.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (section 5.2), masked with a fixed non-zero key."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    repeated = (_MASK * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big") if n else b""
    return head + _MASK + masked


def server_header_size(n: int) -> int:
    """The size of an unmasked frame header for an ``n``-byte payload."""
    return 2 if n < 126 else 4 if n < 1 << 16 else 10


def connect(port: int, ws: bool, timeout: float = 10.0) -> socket.socket:
    """A blocking socket to the server, past the opening handshake when ``ws``."""
    sock, rest = connect_with_rest(port, ws, timeout)
    if rest:
        raise ConnectionError("unexpected bytes after the handshake")
    return sock


def connect_with_rest(port: int, ws: bool, timeout: float = 10.0) -> tuple[socket.socket, bytes]:
    """A blocking socket past the handshake, and what arrived after the handshake's end."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ws:
        sock.sendall(handshake_request(port))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed during the handshake")
            reply += chunk
        if not reply.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {reply[:80]!r}")
        return sock, reply[reply.index(b"\r\n\r\n") + 4 :]
    return sock, b""


def _recv_exactly(sock: socket.socket, buf: memoryview, n: int) -> None:
    got = 0
    while got < n:
        k = sock.recv_into(buf[got:n])
        if not k:
            raise ConnectionError("the server closed the connection")
        got += k


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Cpu:
    """This process's CPU time over a stretch of wall time."""

    def __enter__(self) -> _Cpu:
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self.cpu0
        self.wall = time.perf_counter() - self.wall0

    @property
    def share(self) -> float:
        return self.cpu / self.wall if self.wall else float("nan")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid: int) -> int:
    """Resident memory of a process in bytes (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# -- workloads -----------------------------------------------------------------------


def roundtrips(port: int, ws: bool, count: int, size: int = 32) -> dict[str, Any]:
    """Sequential round trips of a ``size``-byte message on one connection."""
    sock = connect(port, ws)
    payload = os.urandom(size)
    out = masked_frame(0x2, payload) if ws else payload
    expect = size + (server_header_size(size) if ws else 0)
    buf = memoryview(bytearray(expect))
    clock = time.perf_counter_ns
    for _ in range(count // 10):  # warm up
        sock.sendall(out)
        _recv_exactly(sock, buf, expect)
    latencies = []
    with _Cpu() as cpu:
        for _ in range(count):
            t0 = clock()
            sock.sendall(out)
            _recv_exactly(sock, buf, expect)
            latencies.append(clock() - t0)
    sock.close()
    return {
        "per_s": count / cpu.wall,
        "p50_us": percentile(latencies, 0.5) / 1e3,
        "p99_us": percentile(latencies, 0.99) / 1e3,
        "loadgen_cpu": cpu.share,
    }


def pipelined(port: int, ws: bool, count: int, size: int = 64, window: int = 2048) -> dict[str, Any]:
    """``count`` messages sent back to back, at most ``window`` unanswered, all echoed."""
    sock = connect(port, ws)
    payload = os.urandom(size)
    one = masked_frame(0x2, payload) if ws else payload
    batch_n = 128
    batch = one * batch_n
    reply = size + (server_header_size(size) if ws else 0)
    buf = bytearray(1 << 20)
    sent = received = 0
    with _Cpu() as cpu:
        while True:
            if sent < count and sent - received // reply < window:
                sock.sendall(batch)
                sent += batch_n
                continue
            if sent >= count and received >= sent * reply:
                break
            k = sock.recv_into(buf)
            if not k:
                raise ConnectionError("the server closed the connection")
            received += k
    sock.close()
    return {"per_s": sent / cpu.wall, "loadgen_cpu": cpu.share}


def big_echo(port: int, ws: bool, count: int, size: int = 1 << 20) -> dict[str, Any]:
    """``count`` sequential echoes of a ``size``-byte binary message; MB/s of payload each way."""
    sock = connect(port, ws)
    payload = os.urandom(size)
    out = masked_frame(0x2, payload) if ws else payload
    expect = size + (server_header_size(size) if ws else 0)
    buf = memoryview(bytearray(expect))
    sock.sendall(out)
    _recv_exactly(sock, buf, expect)
    with _Cpu() as cpu:
        for _ in range(count):
            sock.sendall(out)
            _recv_exactly(sock, buf, expect)
    if ws and bytes(buf[-16:]) != payload[-16:]:
        raise RuntimeError("the echo came back different")
    sock.close()
    return {"mb_s": count * size / cpu.wall / 1e6, "loadgen_cpu": cpu.share}


def handshakes(port: int, ws: bool, seconds: float, concurrency: int = 16) -> dict[str, Any]:
    """Open, handshake and close connections, ``concurrency`` at a time, for ``seconds``.

    A WebSocket connection counts once its closing handshake is done: the
    client sends Close, reads the server's Close and the end of the stream.
    The raw floor connects, echoes one byte, and closes.
    """
    request = handshake_request(port) if ws else b"x"
    close = masked_frame(0x8, struct.pack("!H", 1000)) if ws else b""
    selector = selectors.DefaultSelector()
    done = 0
    errors = 0

    def start() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        selector.register(sock, selectors.EVENT_WRITE, [sock, "connecting", b""])

    with _Cpu() as cpu:
        deadline = time.perf_counter() + seconds
        for _ in range(concurrency):
            start()
        while time.perf_counter() < deadline:
            for key, _mask in selector.select(1.0):
                state = key.data
                sock = state[0]
                if state[1] == "connecting":
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        errors += 1
                        selector.unregister(sock)
                        sock.close()
                        start()
                        continue
                    sock.send(request)
                    state[1] = "opening"
                    selector.modify(sock, selectors.EVENT_READ, state)
                    continue
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                state[2] += data
                if state[1] == "opening":
                    if ws and b"\r\n\r\n" in state[2]:
                        if not state[2].startswith(b"HTTP/1.1 101"):
                            raise RuntimeError(f"handshake refused: {state[2][:60]!r}")
                        sock.send(close)
                        state[1], state[2] = "closing", b""
                    elif not ws and data:
                        sock.shutdown(socket.SHUT_WR)
                        state[1] = "closing"
                    elif not data:
                        errors += 1
                        state[1] = "closing"
                if state[1] == "closing" and not data:
                    selector.unregister(sock)
                    sock.close()
                    done += 1
                    start()
    for key in list(selector.get_map().values()):
        key.data[0].close()
    selector.close()
    return {"per_s": done / cpu.wall, "errors": errors, "loadgen_cpu": cpu.share}


def open_idle(port: int, ws: bool, count: int) -> list[socket.socket]:
    """``count`` open connections past the handshake, doing nothing."""
    return [connect(port, ws) for _ in range(count)]


def fanout(port: int, ws: bool, clients: int, seconds: float, server_pid: int) -> dict[str, Any]:
    """Receive a server's broadcast on ``clients`` connections for ``seconds``.

    Every message is stamped with its send time and a tick number (see
    ``servers.py``); a gap in one connection's tick numbers is a lost message.
    Latency is from the server's send call to this process reading the
    message, so it includes the time this process takes to reach that socket
    among all the others in the same tick, and up to half a millisecond of
    batching (see ``drain``).
    """
    opened = [connect_with_rest(port, ws) for _ in range(clients)]
    socks = [sock for sock, _ in opened]
    hdr = server_header_size(100) if ws else 0
    record = 100 + hdr
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    last_tick: dict[socket.socket, int] = {}
    for sock, rest in opened:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)
        buffers[sock] = bytearray(rest)
    unpack = _STAMP.unpack_from
    now_ns = time.monotonic_ns
    latencies: list[int] = []
    delivered = lost = 0

    def drain(measure: bool) -> None:
        nonlocal delivered, lost
        # Read in batches half a millisecond apart: woken for every single
        # message, this process would spend more on waking than on reading,
        # and its lag would show up as the server's latency.
        time.sleep(0.0005)
        for key, _ in selector.select(0.05):
            sock = key.data
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the server closed a fan-out connection")
            buf = buffers[sock]
            buf += data
            now = now_ns()
            n = len(buf) // record
            for i in range(n):
                stamp, tick = unpack(buf, i * record + hdr)
                previous = last_tick.get(sock)
                if previous is not None and tick != previous + 1:
                    lost += tick - previous - 1
                last_tick[sock] = tick
                if measure:
                    latencies.append(now - stamp)
            if measure:
                delivered += n
            del buf[: n * record]

    warm_until = time.perf_counter() + 1.5
    while time.perf_counter() < warm_until:
        drain(False)
    lost = 0
    cpu0 = proc_cpu(server_pid)
    with _Cpu() as cpu:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            drain(True)
    server_cpu = proc_cpu(server_pid) - cpu0
    for sock in socks:
        sock.close()
    return {
        "delivered_per_s": delivered / cpu.wall,
        "lost": lost,
        "p50_ms": percentile(latencies, 0.5) / 1e6,
        "p99_ms": percentile(latencies, 0.99) / 1e6,
        "max_ms": max(latencies) / 1e6 if latencies else float("nan"),
        "server_cpu_us_per_msg": server_cpu / delivered * 1e6 if delivered else float("nan"),
        "server_cpu": server_cpu / cpu.wall,
        "loadgen_cpu": cpu.share,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")

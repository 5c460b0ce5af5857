"""What the pygame bridge (toad.pg) costs a toad client, next to a plain polling loop.

    python benchmarks/bridge.py            # 200,000 messages, 5 runs of each, medians
    python benchmarks/bridge.py --quick    # 20,000 messages, 3 runs: a smoke run

The peer is a raw socket in this process that sends short text frames built in
advance (it does no WebSocket work worth measuring); the game is a
``toad.Connection`` with ``block=False``, read on this thread in one of three ways:

- ``poll()``: ``conn.poll()`` in a loop, counting the message events;
- ``messages()``: ``conn.messages()`` in a loop;
- ``toad.pg``: ``toad.pg.pump()`` then ``pygame.event.get()`` in a loop, counting
  ``toad.pg.MESSAGE`` events (SDL's dummy video driver: no window).

Figures:

- drain: messages per second handed to the game when all of them are already
  waiting in toad's queue (the game stalled; only the game's side is timed);
- stream: messages per second from the peer's first byte to the game's last
  message, the network thread reading while the game loop runs;
- latency: one message at a time, from just before the peer's ``sendall()`` to
  the moment the game holds it (from ``poll()``, or from ``pygame.event.get()``).
  The game waits with ``conn.wait_events()``, so the frame's own wait (up to one
  frame in a real game, either way) is not in it: what is left is toad's hand-off
  plus, for ``toad.pg``, the bridge.

Each figure is the median of the runs (p99 is taken within a run). ``run(quick)``
returns the figures as a dict, for ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame

import toad
import toad.pg
from toad.handshake import accept_key

MODES = ("poll", "messages", "pg")


class Peer:
    """A WebSocket server on a plain socket, for one client: answers its handshake, then sends raw frames."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.sock: socket.socket | None = None
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += sock.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.ready.set()

    def wait(self) -> socket.socket:
        if not self.ready.wait(10) or self.sock is None:
            raise RuntimeError("the client never finished its handshake")
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.listener.close()


def text_frame(payload: bytes) -> bytes:
    return b"\x81" + bytes([len(payload)]) + payload  # unmasked: a server's frame of < 126 bytes


def numbered(n: int) -> bytes:
    return b"".join(text_frame(b"m%d" % i) for i in range(n))


def connect(mode: str) -> tuple[Peer, toad.Connection, socket.socket]:
    peer = Peer()
    conn = toad.Connection(peer.url, ping_interval=None, close_timeout=0.5)
    conn.open(block=False)
    sock = peer.wait()
    if mode == "pg":
        toad.pg.attach(conn)
    # Take the OPEN, so that what is measured is messages only.
    reader = reader_for(mode, conn)
    reader()
    return peer, conn, sock


def reader_for(mode: str, conn: toad.Connection) -> Callable[[], int]:
    """One turn of the game's loop in ``mode``: hands over what is waiting, returns how many messages."""
    if mode == "poll":
        return lambda: sum(1 for event in conn.poll() if event.type == "message")
    if mode == "messages":
        return lambda: len(conn.messages())
    message_type = toad.pg.MESSAGE

    def pump_and_get() -> int:
        toad.pg.pump()
        return sum(1 for event in pygame.event.get() if event.type == message_type)

    return pump_and_get


def finish(peer: Peer, conn: toad.Connection, mode: str) -> None:
    conn.close()
    peer.close()
    conn.wait_closed(2)
    if mode == "pg":
        toad.pg.detach(conn)
    pygame.event.clear()


def drain(mode: str, n: int, blob: bytes) -> float:
    """Messages per second handed to the game when all ``n`` already wait in toad."""
    peer, conn, sock = connect(mode)
    try:
        sock.sendall(blob)
        deadline = time.monotonic() + 60
        while len(conn._queue) < n:  # the flood is in (reading toad's queue: the only way to know)
            if time.monotonic() > deadline:
                raise RuntimeError("the messages never all arrived")
            time.sleep(0.01)
        read = reader_for(mode, conn)
        got = 0
        start = time.perf_counter()
        while got < n:
            got += read()
        return n / (time.perf_counter() - start)
    finally:
        finish(peer, conn, mode)


def stream(mode: str, n: int, blob: bytes) -> float:
    """Messages per second from the peer's first byte to the game's last message."""
    peer, conn, sock = connect(mode)
    try:
        read = reader_for(mode, conn)
        sender = threading.Thread(target=sock.sendall, args=(blob,), daemon=True)
        got = 0
        start = time.perf_counter()
        sender.start()
        while got < n:
            handed = read()
            got += handed
            if not handed:
                conn.wait_events(0.01)  # a game would wait for its next frame: let the network thread read
        elapsed = time.perf_counter() - start
        sender.join(10)
        return n / elapsed
    finally:
        finish(peer, conn, mode)


def latency(mode: str, samples: int) -> list[float]:
    """Seconds from the peer's send to the game holding the message, one message at a time."""
    peer, conn, sock = connect(mode)
    try:
        read = reader_for(mode, conn)
        frame = text_frame(b"ping")
        times = []
        for i in range(samples + samples // 10):  # the first tenth warms up and is dropped
            start = time.perf_counter()
            sock.sendall(frame)
            while True:
                conn.wait_events(1.0)
                if read():
                    break
            if i >= samples // 10:
                times.append(time.perf_counter() - start)
        return times
    finally:
        finish(peer, conn, mode)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool) -> dict[str, Any]:
    """Measure every mode; returns the medians over the runs (rates in messages/s, latencies in µs)."""
    n, runs, samples = (20_000, 3, 300) if quick else (200_000, 5, 2000)
    pygame.display.init()
    blob = numbered(n)
    figures: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        figures.setdefault(key, []).append(value)

    for _ in range(runs):
        for mode in MODES:  # interleaved, so that a busy moment on the machine hits every mode
            add(f"{mode}_drain_per_s", drain(mode, n, blob))
            add(f"{mode}_stream_per_s", stream(mode, n, blob))
            if mode != "messages":
                times = latency(mode, samples)
                add(f"{mode}_latency_median_us", statistics.median(times) * 1e6)
                add(f"{mode}_latency_p99_us", percentile(times, 0.99) * 1e6)
    result: dict[str, Any] = {"messages": n, "runs": runs, "latency_samples": samples}
    result.update({key: statistics.median(values) for key, values in figures.items()})
    result["pg_cost_us_per_message"] = 1e6 / result["pg_drain_per_s"] - 1e6 / result["poll_drain_per_s"]
    result["pg_added_latency_median_us"] = result["pg_latency_median_us"] - result["poll_latency_median_us"]
    result["pg_added_latency_p99_us"] = result["pg_latency_p99_us"] - result["poll_latency_p99_us"]
    return result


def table(result: dict[str, Any]) -> str:
    def cell(key: str, fmt: str) -> str:
        return format(result[key], fmt) if key in result else "-"

    lines = [
        f"{result['messages']:,} messages, {result['runs']} runs (medians), "
        f"latency over {result['latency_samples']} messages a run",
        "",
        "| game reads with | drain msg/s | stream msg/s | latency median µs | latency p99 µs |",
        "|---|---|---|---|---|",
    ]
    names = {"poll": "conn.poll()", "messages": "conn.messages()", "pg": "toad.pg.pump() + pygame.event.get()"}
    for mode in MODES:
        lines.append(
            f"| {names[mode]} | {cell(f'{mode}_drain_per_s', ',.0f')} | {cell(f'{mode}_stream_per_s', ',.0f')} "
            f"| {cell(f'{mode}_latency_median_us', '.0f')} | {cell(f'{mode}_latency_p99_us', '.0f')} |"
        )
    lines += [
        "",
        f"bridge cost: {result['pg_cost_us_per_message']:.2f} µs per message more than poll(); "
        f"added latency: {result['pg_added_latency_median_us']:+.0f} µs median, "
        f"{result['pg_added_latency_p99_us']:+.0f} µs p99",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 messages and 3 runs: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object (for run.py)")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run(args.quick)))
        return
    print(f"pygame-ce {pygame.version.ver}, Python {sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    print(table(run(args.quick)))


if __name__ == "__main__":
    main()

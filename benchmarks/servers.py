"""The servers the benchmarks measure, one per process: ``python benchmarks/servers.py KIND ROLE PORT [RATE]``.

KIND is what serves:

- ``toad``: a :class:`toad.Server` with ``block=True`` (callbacks run on the
  network loop's thread, the seed's default for a server);
- ``toad-poll``: a :class:`toad.Server` with ``block=False`` and a game loop
  that waits for events and polls them (a game server with its own tick);
- ``websockets``: the ``websockets`` package's asyncio server, compression off
  (toad has none), the size limit raised to fit the 1 MiB workload;
- ``raw``: plain TCP in Python with a selector, no WebSocket work at all: the floor.

ROLE is what it does: ``echo`` sends every message back; ``fanout`` sends one
100-byte binary message to every connected client RATE times a second, the
first 8 bytes the send time (``time.monotonic_ns()``, one clock for every
process on Linux); ``hold`` accepts connections and keeps them idle.

The process prints ``ready`` on stdout once it listens and runs until it is
killed.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import struct
import sys
import time
from typing import Any

MAX_SIZE = 4 << 20  # room for the 1 MiB workload on every server
FANOUT_SIZE = 100
_STAMP = struct.Struct("!QQ")


def fanout_payload(tick: int) -> bytes:
    """A 100-byte state message stamped with the time it is sent and its tick number."""
    return _STAMP.pack(time.monotonic_ns(), tick) + bytes(FANOUT_SIZE - _STAMP.size)


def _ticks(rate: float) -> Any:
    """Yield at ``rate`` per second on a fixed schedule, sleeping in between (no drift)."""
    period = 1.0 / rate
    next_tick = time.monotonic()
    tick = 0
    while True:
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()  # fell behind: do not try to catch up in a burst
        tick += 1
        yield tick


# -- toad ------------------------------------------------------------------------


def serve_toad(role: str, port: int, rate: float, block: bool) -> None:
    import toad

    server = toad.Server(ping_interval=None, max_message_size=MAX_SIZE, max_write_buffer=64 << 20)
    if role == "echo":

        @server.onmessage
        def echo(client: toad.Client, message: str | bytes) -> None:
            client.send(message)

    if block and role != "fanout":
        _ready_later(port)
        server.start("127.0.0.1", port, block=True)
        return
    server.start("127.0.0.1", port, block=False)
    print("ready", flush=True)
    if role == "fanout":
        for tick in _ticks(rate):
            server.poll()
            server.broadcast(fanout_payload(tick))
    else:
        while True:
            server.wait_events(1.0)
            server.poll()


def _ready_later(port: int) -> None:
    # With block=True start() never returns: say "ready" once the port answers.
    import threading

    def wait() -> None:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        print("ready", flush=True)

    threading.Thread(target=wait, daemon=True).start()


# -- websockets ------------------------------------------------------------------


def serve_websockets(role: str, port: int, rate: float) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        handler = echo if role == "echo" else hold
        async with serve(handler, "127.0.0.1", port, compression=None, max_size=MAX_SIZE, ping_interval=None) as server:
            print("ready", flush=True)
            if role != "fanout":
                await asyncio.Future()
            loop = asyncio.get_running_loop()
            period = 1.0 / rate
            next_tick = loop.time()
            tick = 0
            while True:
                next_tick += period
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
                tick += 1
                broadcast(server.connections, fanout_payload(tick))

    asyncio.run(main())


# -- raw TCP -----------------------------------------------------------------------


def serve_raw(role: str, port: int, rate: float) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    pending: dict[socket.socket, bytes] = {}  # what a socket could not take yet
    print("ready", flush=True)

    def send(sock: socket.socket, data: bytes) -> None:
        if sock in pending:
            pending[sock] += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            pending[sock] = data[sent:]
            selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, sock)

    def serve_once(timeout: float | None) -> None:
        for key, mask in selector.select(timeout):
            if key.data is None:
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    selector.register(sock, selectors.EVENT_READ, sock)
                continue
            sock = key.data
            if mask & selectors.EVENT_WRITE:
                data = pending.pop(sock)
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    pending[sock] = data[sent:]
                else:
                    selector.modify(sock, selectors.EVENT_READ, sock)
            if mask & selectors.EVENT_READ:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    pending.pop(sock, None)
                    sock.close()
                elif role == "echo":
                    send(sock, data)

    if role != "fanout":
        while True:
            serve_once(None)
    for tick in _ticks(rate):
        serve_once(0)
        payload = fanout_payload(tick)
        for key in list(selector.get_map().values()):
            if key.data is not None:
                send(key.data, payload)


def main() -> None:
    kind, role, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    if kind == "toad":
        serve_toad(role, port, rate, block=True)
    elif kind == "toad-poll":
        serve_toad(role, port, rate, block=False)
    elif kind == "websockets":
        serve_websockets(role, port, rate)
    elif kind == "raw":
        serve_raw(role, port, rate)
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


if __name__ == "__main__":
    main()

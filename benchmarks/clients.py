"""The clients whose receiving speed the benchmarks measure: ``python benchmarks/clients.py KIND PORT COUNT``.

The client connects to ``ws://127.0.0.1:PORT/`` (a raw sender in the
benchmark process that blasts COUNT 64-byte binary messages as fast as the
socket takes them), receives COUNT messages, and prints one JSON line: the
messages per second from the first message to the last, and its CPU share.

KIND:
- ``toad``: a :class:`toad.Connection` with ``block=False`` and a game loop
  that waits for events and takes ``messages()`` (the polling API);
- ``toad-block``: a :class:`toad.Connection` with ``block=True`` and an
  ``onmessage`` callback;
- ``toad-pygame``: the polling connection fed through the pygame bridge into
  ``pygame.event.get()`` (``SDL_VIDEODRIVER=dummy``);
- ``websockets``: the ``websockets`` asyncio client, compression off;
- ``raw``: a socket reading the bytes, no WebSocket work (the floor).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time

PORT_URL = "ws://127.0.0.1:{port}/"
SIZE = 64


def receive_toad(port: int, count: int) -> tuple[float, float]:
    import toad

    conn = toad.Connection(max_queue=count + 1, max_queue_size=1 << 30)
    conn.open(PORT_URL.format(port=port), block=False)
    got = 0
    first = 0.0
    while got < count:
        conn.wait_events(1.0)
        batch = conn.messages()
        if batch and not first:
            first = time.perf_counter()
        got += len(batch)
    end = time.perf_counter()
    conn.close()
    return first, end


def receive_toad_block(port: int, count: int) -> tuple[float, float]:
    import toad

    conn = toad.Connection(max_queue=count + 1, max_queue_size=1 << 30)
    got = 0
    first = end = 0.0

    @conn.onmessage
    def onmessage(message: bytes) -> None:
        nonlocal got, first, end
        if not got:
            first = time.perf_counter()
        got += 1
        if got == count:
            end = time.perf_counter()
            conn.close()

    conn.open(PORT_URL.format(port=port), block=True)
    return first, end


def receive_toad_pygame(port: int, count: int) -> tuple[float, float]:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    import pygame

    import toad
    import toad.pg

    pygame.init()
    pygame.display.set_mode((64, 64))
    conn = toad.Connection(max_queue=count + 1, max_queue_size=1 << 30)
    conn.open(PORT_URL.format(port=port), block=False)
    toad.pg.attach(conn)
    clock = pygame.time.Clock()
    got = 0
    first = 0.0
    while got < count:
        toad.pg.pump()
        for event in pygame.event.get():
            if event.type == toad.pg.MESSAGE:
                if not got:
                    first = time.perf_counter()
                got += 1
        clock.tick(1000)
    end = time.perf_counter()
    conn.close()
    pygame.quit()
    return first, end


def receive_websockets(port: int, count: int) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    async def main() -> tuple[float, float]:
        async with connect(PORT_URL.format(port=port), compression=None, max_queue=None) as ws:
            got = 0
            first = 0.0
            async for _message in ws:
                if not got:
                    first = time.perf_counter()
                got += 1
                if got == count:
                    return first, time.perf_counter()
        raise ConnectionError("closed early")

    return asyncio.run(main())


def receive_raw(port: int, count: int) -> tuple[float, float]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # the sender waits for a request line either way
    total = count * (SIZE + 2)
    buf = bytearray(1 << 20)
    got = 0
    first = 0.0
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    while got < total:
        k = sock.recv_into(buf)
        if not k:
            raise ConnectionError("closed early")
        if not first:
            first = time.perf_counter()
        got += k
    return first, time.perf_counter()


RECEIVERS = {
    "toad": receive_toad,
    "toad-block": receive_toad_block,
    "toad-pygame": receive_toad_pygame,
    "websockets": receive_websockets,
    "raw": receive_raw,
}


def main() -> None:
    kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cpu0 = time.process_time()
    first, end = RECEIVERS[kind](port, count)
    cpu = time.process_time() - cpu0
    elapsed = end - first
    print(json.dumps({"per_s": count / elapsed if elapsed > 0 else float("nan"), "cpu_s": cpu}), flush=True)


if __name__ == "__main__":
    main()

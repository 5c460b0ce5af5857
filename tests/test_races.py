"""Races between the game's thread and the network thread, run many times to catch them.

Each test repeats a pattern that once lost a wake-up, with Python's thread
switch interval turned down so the threads interleave often.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

import toad


@pytest.fixture(autouse=True)
def busy_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def test_wait_events_never_sleeps_through_queued_events() -> None:
    server = toad.Server(ping_interval=None)
    server.start("127.0.0.1", 0, block=False)
    conns = [toad.Connection(f"ws://127.0.0.1:{server.port}", ping_interval=None) for _ in range(4)]
    count = 5000

    def send_all(conn: toad.Connection) -> None:
        for i in range(count):
            conn.send("m")
            if i % 7 == 0:
                time.sleep(0.0001)

    try:
        for conn in conns:
            conn.open(block=False)
        senders = [threading.Thread(target=send_all, args=(conn,)) for conn in conns]
        for sender in senders:
            sender.start()
        got = 0
        while got < len(conns) * count:
            started = time.monotonic()
            ready = server.wait_events(2.0)
            slept = time.monotonic() - started
            # Senders never pause for long: a 2 s sleep that ends with events
            # waiting means the wake-up was lost.
            assert not (ready and slept > 1.9), f"slept {slept:.1f} s with {len(server._queue)} events queued"
            got += sum(event.type == "message" for event in server.poll())
        for sender in senders:
            sender.join()
    finally:
        for conn in conns:
            conn.close()
        server.stop()

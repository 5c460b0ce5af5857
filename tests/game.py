"""A server with a game loop on its own thread, for tests whose own thread is busy being a hostile peer."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from helpers import RawClient

import toad


class EchoGame:
    """A toad.Server on 127.0.0.1 (block=False) whose game thread polls and echoes every message.

    The test's thread is then free to flood, trickle or stall while the
    server keeps playing. ``warnings`` collects what toad logs at WARNING and
    above; ``failure`` is anything the game thread's ``poll()`` raised (a
    crashed network loop raises there).
    """

    def __init__(self, **options: Any) -> None:
        self.server = toad.Server(**options)
        self.server.onmessage(lambda client, message: client.send(message))
        self.failure: BaseException | None = None
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="echo-game", daemon=True)
        self._handler = _Recorder(self.warnings)

    def __enter__(self) -> EchoGame:
        logging.getLogger("toad").addHandler(self._handler)
        self.server.start("127.0.0.1", 0, block=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.stop()
        logging.getLogger("toad").removeHandler(self._handler)

    def _play(self) -> None:
        try:
            while not self._stop.is_set():
                self.server.wait_events(0.02)
                self.server.poll()
        except BaseException as exc:  # a crashed loop: the test sees it in .failure
            self.failure = exc

    @property
    def port(self) -> int:
        return self.server.port

    def connections(self) -> int:
        """The sockets the server's loop holds, handshakes and closings included."""
        loop = self.server._loop
        assert loop is not None
        return len(loop.channels)

    def healthy(self) -> bool:
        loop = self.server._loop
        return loop is not None and loop.crashed is None and self.failure is None and self._thread.is_alive()


class _Recorder(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.levelname}: {record.getMessage()}")


def round_trip(raw: RawClient, text: str, timeout: float = 5.0) -> float:
    """Send ``text`` on ``raw`` and read its echo (skipping Pongs); the seconds it took."""
    raw.sock.settimeout(timeout)
    started = time.monotonic()
    raw.send_frame(0x1, text.encode())
    while True:
        opcode, payload = raw.recv_frame()
        if opcode == 0xA:
            continue
        assert (opcode, payload) == (0x1, text.encode()), (opcode, payload[:80])
        return time.monotonic() - started


def open_fds(pid: int | None = None) -> int:
    """How many file descriptors a process has open (Linux /proc); this one by default."""
    return len(os.listdir(f"/proc/{pid if pid is not None else 'self'}/fd"))

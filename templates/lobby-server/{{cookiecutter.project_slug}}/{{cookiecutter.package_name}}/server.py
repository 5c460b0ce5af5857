"""The only part that does I/O: a toad.Server, its callbacks, and the fixed-rate tick loop.

Everything the server decides is in lobby.py (pure); this file turns toad's events into calls on the
Lobby and sends what it returns. All of it runs on the thread that calls :meth:`GameServer.run` (or
:meth:`GameServer.step`): toad's own thread only reads and writes sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import toad

from . import protocol, settings
from .lobby import HELLO_TIMEOUT, Lobby, Player, Send

log = logging.getLogger(__name__)

REPLACED = (4000, "replaced by a newer connection")
MAX_CONNECTIONS = 1000  # connections at once; one more is answered 503 by toad


class GameServer:
    """The lobby served over WebSockets.

    ``start()`` listens (``port=0`` picks a free port: read :attr:`port`), then ``run()`` loops until
    :meth:`request_stop` (safe from a signal handler or another thread) and stops; or call ``step()``
    yourself. ``stop()`` closes every connection with 1001.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = settings.PORT,
        *,
        tick_rate: int = settings.TICK_RATE,
        rejoin_window: float = settings.REJOIN_WINDOW,
        room_capacity: int = settings.ROOM_CAPACITY,
        max_connections: int | None = MAX_CONNECTIONS,
        hello_timeout: float = HELLO_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.tick_interval = 1.0 / tick_rate
        self.clock = clock
        self.lobby = Lobby(
            tick_rate=tick_rate, rejoin_window=rejoin_window, room_capacity=room_capacity, hello_timeout=hello_timeout
        )
        # 65536 bytes is far above any message of ours (4096 gets a polite "too_large"); past it toad
        # closes with 1009. A playing client sends one input per tick (plus the odd chat or ready), so
        # the message limit is three times the tick rate, and never under 60 a second.
        self.server = toad.Server(
            max_message_size=65536,
            max_messages_per_second=max(60, 3 * tick_rate),
            max_connections=max_connections,
        )
        self.server.onopen(self._on_open)
        self.server.onmessage(self._on_message)
        self.server.onclose(self._on_close)
        self.server.onerror(self._on_error)
        self._stop_requested = False
        self._last_tick = self._next_tick = 0.0

    @property
    def port(self) -> int:
        """The port it listens on (the real one after ``start()`` with port 0)."""
        return self.server.port

    def start(self) -> None:
        """Listen, without blocking; raises toad.AddressInUse or toad.InvalidAddress if it cannot."""
        self.server.start(self.host, self.requested_port, block=False)
        self._last_tick = self.clock()
        self._next_tick = self._last_tick + self.tick_interval
        self._stop_requested = False

    def step(self) -> None:
        """One turn: wait for events until the next tick is due, handle them, and tick if it is time."""
        wait = self._next_tick - self.clock()
        if wait > 0:
            self.server.wait_events(wait)
        self.server.poll()
        now = self.clock()
        if now < self._next_tick:
            return
        dt, self._last_tick = now - self._last_tick, now
        self._next_tick += self.tick_interval
        if self._next_tick <= now:
            # This tick ran late (a slow machine, a debugger): run it once with the real dt and carry
            # on from now, rather than a burst of catch-up ticks that would make it later still.
            self._next_tick = now + self.tick_interval
        ticked = self.lobby.tick(now, dt)
        self._send(ticked.sends)
        for player, (code, reason) in ticked.closes:
            client = self.server.client_of(player)
            if client is not None:
                log.debug("closing %s: %s", client.address, reason)
                client.close(code, reason)

    def run(self) -> None:
        """Step until :meth:`request_stop`, then :meth:`stop`."""
        try:
            while not self._stop_requested:
                self.step()
        finally:
            self.stop()

    def run_for(self, seconds: float) -> None:
        """Step for ``seconds`` (or until :meth:`request_stop`), without stopping: for tests."""
        deadline = self.clock() + seconds
        while not self._stop_requested and self.clock() < deadline:
            self.step()

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop within a tick; safe from a signal handler or any thread."""
        self._stop_requested = True

    def stop(self) -> int:
        """Close every connection with 1001 and stop listening; returns how many players were online."""
        if not self.server.running:
            return 0
        self.server.poll()  # closes that already arrived count as gone, not as online
        online = self.lobby.online
        self.server.stop()
        log.info("stopped, %d player%s online", online, "" if online == 1 else "s")
        return online

    # -- toad's callbacks ------------------------------------------------------------------

    def _on_open(self, client: toad.Client) -> Player:
        log.debug("connection from %s", client.address)
        return self.lobby.connect(self.clock())  # toad hands this Player to every later callback

    def _on_message(self, player: Player, message: str | bytes) -> None:
        outcome = self.lobby.receive(player, message, self.clock())
        if outcome.player is not player:
            self._rebind(player, outcome.player)
        self._send(outcome.sends)
        if outcome.close is not None:
            client = self.server.client_of(outcome.player)
            if client is not None:
                client.close(*outcome.close)

    def _on_close(self, player: object) -> None:
        if not isinstance(player, Player):
            return  # a connection a newer one replaced: it no longer speaks for anybody
        client = self.server.client_of(player)
        code = client.close_code if client is not None and client.close_code is not None else 1006
        self._send(self.lobby.disconnect(player, code, self.clock()))

    def _on_error(self, player: object, error: Exception) -> None:
        # Lost connections, floods (toad closes those with 1008), broken frames: the client's doing,
        # and onclose follows. Our own bugs are logged by toad with a traceback.
        log.debug("%r: %r", player, error)

    # -- helpers -------------------------------------------------------------------------

    def _rebind(self, new: Player, held: Player) -> None:
        """This connection is ``held`` from now on (a hello with its token)."""
        client = self.server.client_of(new)
        old = self.server.client_of(held)
        if old is not None and old is not client:
            # The player's previous connection no longer speaks for them, open or not: one still
            # closing (say, our own close waiting for the peer's answer) would otherwise report
            # ``held`` in its onclose and drop the player while this connection plays on.
            old.player = old
            if old.is_open:  # its loss not noticed yet: retire it
                old.close(*REPLACED)
        if client is not None:
            client.player = held  # toad's client_of() and broadcast(to=...) follow

    def _send(self, sends: list[Send]) -> None:
        for recipients, message in sends:
            self.server.broadcast(protocol.encode(message), to=recipients)

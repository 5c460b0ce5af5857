"""The connection to the lobby server: one ``toad.Connection``, JSON in and out, and the rejoin token.

toad does the hard parts: ``reconnect=True`` brings a lost connection back by
itself, and ``toad.pg`` turns its events into pygame events (``toad.pg.OPEN``,
``MESSAGE``, ``ERROR``, ``CLOSE``) that the App handles beside the keyboard.
This module adds the protocol's shape: every message is a JSON object with a
``"type"``, and on *every* open, the first and each one after a reconnect,
``hello`` goes out with the saved token so the server gives back our seat.

The send helpers (:meth:`Net.create`, :meth:`Net.join`, ...) are the actions:
the screens call them on clicks and the bot calls the very same ones.
Each returns whether the message went out (``False`` while reconnecting).

Opening: ``toad.Connection.open()`` blocks until the opening handshake is done
(up to ``open_timeout`` seconds), so :meth:`Net.connect` runs it on a short-lived
helper thread and the window keeps drawing "connecting…". That thread only
opens the connection: no game code runs on it (toad's events still reach the
game's thread through ``toad.pg.pump()``), and it hands its outcome over in a
thread-safe queue that the frame loop reads with :meth:`Net.poll_open`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

import toad
import toad.pg

from . import settings

logger = logging.getLogger(__name__)


class Net:
    """One player's connection; create it once, :meth:`connect` it, feed it the toad events."""

    def __init__(self, url: str, open_timeout: float = settings.OPEN_TIMEOUT) -> None:
        # 64 KiB is the protocol's limit; the server never sends more.
        self.conn = toad.pg.attach(
            toad.Connection(url, reconnect=True, open_timeout=open_timeout, max_message_size=65536)
        )
        self.name = ""
        self.token: str | None = None  # from `welcome`; sent in every hello so the server returns our seat
        self.quitting = False
        # Opening on the helper thread: its outcome (None: open, else why not) and whether the game gave up.
        self._outcomes: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._opener: threading.Thread | None = None
        self._cancelled = threading.Event()

    # -- the connection --------------------------------------------------------------

    def connect(self, name: str) -> bool:
        """Start opening the connection as ``name``; returns at once (``False`` if already opening).

        The handshake runs on a helper thread (at most ``open_timeout`` seconds); :meth:`poll_open`
        says how it went. ``hello`` goes out when the ``toad.pg.OPEN`` event arrives (see :meth:`on_open`).
        """
        if self.opening:
            return False
        self.name = name
        self.quitting = False
        self._cancelled.clear()
        self._opener = threading.Thread(target=self._open, name="connect", daemon=True)
        self._opener.start()
        return True

    def _open(self) -> None:
        # The helper thread: toad's open() and nothing else. A daemon, so closing the window
        # while it waits for a silent server does not keep the program alive.
        try:
            self.conn.open(block=False)
        except toad.ToadError as exc:  # ConnectionFailed: a sentence for the player
            self._outcomes.put(str(exc) or "cannot connect")
            return
        except Exception as exc:  # a bug must still end "connecting…"
            logger.exception("opening the connection failed unexpectedly")
            self._outcomes.put(f"cannot connect: {exc!r}")
            return
        if self._cancelled.is_set():  # the game quit while we waited: do not stay connected
            self.conn.close(1000, "bye")
        self._outcomes.put(None)

    @property
    def opening(self) -> bool:
        """Whether the helper thread is still opening the connection (its outcome not yet polled)."""
        return self._opener is not None

    def poll_open(self) -> tuple[bool, str] | None:
        """The outcome of :meth:`connect`, once: ``(True, "")`` opened, ``(False, why)`` failed; ``None`` meanwhile.

        Called every frame on the game's thread. Never blocks.
        """
        try:
            outcome = self._outcomes.get_nowait()
        except queue.Empty:
            return None
        self._opener = None
        return (True, "") if outcome is None else (False, outcome)

    def cancel(self) -> None:
        """Give up a :meth:`connect` still under way (the window closed): if it opens after all, it closes."""
        self.quitting = True
        self._cancelled.set()

    @property
    def connected(self) -> bool:
        """Whether messages can go out now (open, not reconnecting)."""
        return self.conn.isopen() and not self.conn.reconnecting

    @property
    def reconnecting(self) -> bool:
        """Whether toad lost the connection and is bringing it back."""
        return self.conn.reconnecting

    def close(self) -> None:
        """Close with 1000: the server lets our seat go at once (we quit on purpose); no reconnect."""
        self.quitting = True
        self.conn.close(1000, "bye")

    def on_open(self) -> None:
        """Every (re)open: say hello, with the token if we have one, so a reconnect resumes our seat."""
        hello: dict[str, Any] = {"type": "hello", "name": self.name}
        if self.token:
            hello["token"] = self.token
        self.send(hello)

    def decode(self, message: str | bytes) -> dict | None:
        """The message as a dict, or ``None`` if it is not a JSON object with a type (logged, ignored).

        Keeps the token of a ``welcome`` for the next hello.
        """
        try:
            msg = json.loads(message)
        except ValueError:
            logger.warning("the server sent something that is not JSON: %.100r", message)
            return None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            logger.warning("the server sent a message without a type: %.100r", msg)
            return None
        if msg["type"] == "welcome" and isinstance(msg.get("token"), str):
            self.token = msg["token"]
            self.name = str(msg.get("name") or self.name)
        return msg

    def send(self, msg: dict) -> bool:
        """Send one message as compact JSON; ``False`` if it could not go out (not open, reconnecting)."""
        if not self.conn.isopen():
            return False
        return self.conn.send(json.dumps(msg, separators=(",", ":"), ensure_ascii=False))

    # -- the actions (screens and bot) ----------------------------------------------------

    def create(self, name: str, private: bool = False, capacity: int | None = None) -> bool:
        """Create a room and join it as its host (``capacity`` defaults to the server's room size)."""
        msg: dict[str, Any] = {"type": "create", "name": name, "private": private}
        if capacity is not None:
            msg["capacity"] = capacity
        return self.send(msg)

    def join(self, room_id: str) -> bool:
        """Join a listed room by its id."""
        return self.send({"type": "join", "room": room_id})

    def join_code(self, code: str) -> bool:
        """Join a room (private or not) by its 4-letter code; case does not matter."""
        return self.send({"type": "join", "code": code.strip().upper()})

    def leave(self) -> bool:
        """Leave the room (or the game) for the lobby."""
        return self.send({"type": "leave"})

    def ready(self, ready: bool) -> bool:
        """Say whether I am ready to play."""
        return self.send({"type": "ready", "ready": ready})

    def start(self) -> bool:
        """Start the game (host only, everyone ready)."""
        return self.send({"type": "start"})

    def kick(self, player_id: str) -> bool:
        """Remove a member from my room (host only); they go back to the lobby."""
        return self.send({"type": "kick", "player": player_id})

    def chat(self, text: str) -> bool:
        """Say something to the room, or to the lobby when not in a room."""
        text = text.strip()[: settings.MAX_CHAT]
        return bool(text) and self.send({"type": "chat", "text": text})

    def input(self, seq: int, data: dict) -> bool:
        """Send one tick's input (see ``game.read_input``); ``seq`` comes from ``Model.predict``."""
        return self.send({"type": "input", "seq": seq, "input": data})

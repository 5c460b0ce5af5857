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
"""

from __future__ import annotations

import json
import logging
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

    # -- the connection --------------------------------------------------------------

    def connect(self, name: str) -> None:
        """Open the connection as ``name``; blocks until it is open (at most ``open_timeout`` seconds).

        Raises :class:`toad.ConnectionFailed` with a sentence for the player if it cannot.
        ``hello`` goes out when the ``toad.pg.OPEN`` event arrives (see :meth:`on_open`).
        """
        self.name = name
        self.quitting = False
        self.conn.open(block=False)

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

    def chat(self, text: str) -> bool:
        """Say something to the room, or to the lobby when not in a room."""
        text = text.strip()[: settings.MAX_CHAT]
        return bool(text) and self.send({"type": "chat", "text": text})

    def input(self, seq: int, data: dict) -> bool:
        """Send one tick's input (see ``game.read_input``); ``seq`` comes from ``Model.predict``."""
        return self.send({"type": "input", "seq": seq, "input": data})

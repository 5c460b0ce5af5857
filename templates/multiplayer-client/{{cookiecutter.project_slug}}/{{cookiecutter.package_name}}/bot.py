"""The bot (``--bot``): plays through the very actions the screens use, reading only the model.

Flow: connect as its name; in the lobby join the waiting public room named
``--room`` or create it; in the room say "hello from <name>" once, then get ready;
as the host, start once at least ``--players`` members are all ready; in the game
head for the nearest coin (``game.bot_input``); after a game, ready again. The host
is whoever the latest ``room`` message names: when the host's connection drops the
server hands the room to the earliest connected member, and a bot that becomes host
then starts the game itself. A bot the host kicked does not go back to that room
(it creates its own room of the same name instead). A lost
connection is toad's to bring back (the App sends hello with the token); a failed
one is retried every couple of seconds, as a player would press Retry.
"""

from __future__ import annotations

import random
import string
from typing import Any

from . import game
from .model import FAILED, GAME, IDLE, LOBBY, OPEN, ROOM
from .scenes import App

RETRY_AFTER = 2.0  # seconds before the same request is sent again (its answer never came)


def bot_name() -> str:
    """A name like ``bot-k3x9``."""
    return "bot-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=4))


class Bot:
    """Drives an :class:`App`: :meth:`update` every frame, :meth:`input` every game tick."""

    def __init__(self, app: App, name: str, room: str = "bots", players: int = 2, linger: float = 0.0) -> None:
        self.app = app
        self.name = name
        self.room = room
        self.players = players
        self.greeted: set[str] = set()  # rooms where it said hello
        self.asked_at: dict[str, float] = {}  # request kind -> when it was last sent
        self.linger = linger  # seconds to stay on each new screen before acting (for --screenshot)
        self._screen: tuple[str, float] = ("", 0.0)
        app.driver = self

    def _may(self, kind: str, now: float) -> bool:
        """Whether request ``kind`` may go out now (once per :data:`RETRY_AFTER`), and note it if so."""
        if now - self.asked_at.get(kind, -1e9) < RETRY_AFTER:
            return False
        self.asked_at[kind] = now
        return True

    def update(self, now: float) -> None:
        """Decide this frame's clicks from the model."""
        model, net = self.app.model, self.app.net
        key = self.app.scene().key
        if key != self._screen[0]:
            self._screen = (key, now)
        if now - self._screen[1] < self.linger:
            return  # let the screen be seen (and photographed) first
        if model.link in (IDLE, FAILED):
            if self._may("connect", now):
                self.app.connect(self.name)
            return
        if model.link != OPEN:
            return  # connecting or reconnecting: toad is on it
        if model.screen == LOBBY and model.lobby_seen:
            target = next(
                (
                    r
                    for r in model.rooms
                    if r.name == self.room
                    and r.state == "waiting"
                    and r.players < r.capacity
                    and r.id not in model.kicked_from
                ),
                None,
            )
            if self._may("enter", now):
                if target is not None:
                    net.join(target.id)
                else:
                    net.create(self.room)  # capacity: the server's room size
        elif model.screen == ROOM and model.room is not None:
            room = model.room
            if room.id not in self.greeted:
                self.greeted.add(room.id)
                net.chat(f"hello from {model.my_name or self.name}")
            me = room.member(model.me)
            if room.state == "waiting" and me is not None and not me.ready and self._may("ready", now):
                net.ready(True)
            # can_start() reads room.host afresh each frame: a bot handed the host role starts from now on.
            connected = [m for m in room.players if m.connected]
            if len(connected) >= self.players and model.can_start() and self._may("start", now):
                net.start()

    def input(self) -> game.Input | None:
        """This tick's input: towards the nearest coin."""
        model = self.app.model
        if model.screen != GAME or model.state is None or model.setup is None:
            return None
        return game.bot_input(model.own, model.state.get("coins", []), model.setup)

    def report(self, exit_reason: str) -> dict[str, Any]:
        """The ``--report`` JSON, as the README describes it."""
        model = self.app.model
        stats = model.stats
        return {
            "name": model.my_name or self.name,
            "id": model.me or "",
            "welcomes": stats.welcomes,
            "resumed": stats.resumed,
            "rooms_seen": list(stats.rooms_seen),
            "chats": [list(c) for c in stats.chats],
            "errors": [list(e) for e in stats.errors],
            "games_started": stats.games_started,
            "games_ended": stats.games_ended,
            "states": stats.states,
            "first_tick": stats.first_tick,
            "last_tick": stats.last_tick,
            "ticks": dict(stats.ticks),
            "own_error_max": stats.own_error_max,
            "scores": dict(stats.scores),
            "lost": stats.lost,
            "exit": exit_reason,
        }

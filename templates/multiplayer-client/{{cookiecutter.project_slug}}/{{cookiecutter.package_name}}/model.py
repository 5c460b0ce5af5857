"""PURE: the client's picture of the world, fed the server's decoded messages.

:meth:`Model.apply` takes one message (a dict, already JSON-decoded) and the
local time; the ``link_*`` methods take what happened to the connection. The
scenes only *read* the model, and the App picks the scene from
:attr:`Model.screen` and :attr:`Model.link`. No pygame, no sockets, no clock
here: the tests feed it messages and read it back.

Prediction: the player's own circle moves as soon as a key is held
(:meth:`Model.predict`), and each ``state`` from the server corrects it
(reconciliation): the server's position for me, then every input it has not
applied yet (``seq > ack``) applied again with ``game.step``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import game
from .interp import SnapshotBuffer

logger = logging.getLogger(__name__)

#: Screens, by what the server says about us (the connection may still hide them behind the "lost" screen).
NAME, LOBBY, ROOM, GAME = "name", "lobby", "room", "game"
#: The connection: not started, opening, open, lost and coming back, closed for good.
IDLE, CONNECTING, OPEN, RECONNECTING, FAILED = "idle", "connecting", "open", "reconnecting", "failed"

CHAT_LINES = 60  # kept for the chat boxes
TICKS_KEPT = 200  # tick hashes kept for the bot's report
#: The server's colours in the order players join (its game.py COLORS), for the room screen before a game.
PALETTE = [(231, 76, 60), (52, 152, 219), (46, 204, 113), (241, 196, 15), (155, 89, 182), (230, 126, 34)]
PALETTE += [(26, 188, 156), (236, 240, 241)]


@dataclass
class RoomInfo:
    """A public room as the ``lobby`` message lists it."""

    id: str
    name: str
    players: int
    capacity: int
    state: str  # "waiting" | "playing"


@dataclass
class Member:
    """A member of our room."""

    id: str
    name: str
    ready: bool
    connected: bool


@dataclass
class Room:
    """The room we are in, as the last ``room`` message described it (members in join order)."""

    id: str
    name: str
    code: str
    private: bool
    host: str
    capacity: int
    state: str
    players: list[Member]

    def member(self, pid: str | None) -> Member | None:
        """The member with id ``pid``, or ``None``."""
        return next((m for m in self.players if m.id == pid), None)


@dataclass
class ChatLine:
    """One chat message; ``sender`` is ``None`` for the server's notices."""

    scope: str
    sender: str | None
    name: str
    text: str


@dataclass
class Pending:
    """An input sent but not yet applied by the server, and where it put my circle."""

    seq: int
    data: game.Input
    x: float
    y: float


@dataclass
class Stats:
    """What the bot reports (``--report``); kept for every client because only the model sees every message."""

    welcomes: int = 0
    resumed: int = 0
    rooms_seen: list[str] = field(default_factory=list)
    chats: list[list[str]] = field(default_factory=list)
    errors: list[list[str]] = field(default_factory=list)
    games_started: int = 0
    games_ended: int = 0
    states: int = 0
    first_tick: int = -1  # -1: no state seen yet
    last_tick: int = -1
    ticks: dict[str, str] = field(default_factory=dict)
    own_error_max: float = 0.0
    scores: dict[str, int] = field(default_factory=dict)
    lost: int = 0


def state_hash(state: Any) -> str:
    """The SHA-1 of ``state``'s canonical JSON (sorted keys, no spaces), as server and bots compare them."""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Model:
    """Everything the client knows. Start with :data:`NAME` screen and :data:`IDLE` link."""

    def __init__(self) -> None:
        self.screen = NAME
        self.link = IDLE
        self.link_error = ""  # why the connection failed, for the lost screen
        self.me: str | None = None  # my player id
        self.my_name = ""
        self.token: str | None = None  # the rejoin token from `welcome`
        self.tick_rate = 20
        self.lobby_seen = False  # a `lobby` arrived since the last welcome
        self.rooms: list[RoomInfo] = []  # the server lists at most 50 public rooms...
        self.total_rooms = 0  # ...of this many (``lobby.total``; the list's length when it is not sent)
        self.online = 0
        self.kicked_from: set[str] = set()  # rooms whose host removed us (the bot does not go back)
        self.room: Room | None = None
        self.chat: deque[ChatLine] = deque(maxlen=CHAT_LINES)
        self.toasts: list[tuple[str, float]] = []  # (text, shown until)
        self.result: dict | None = None  # the last game's `end` result, shown in the room
        # The game being played.
        self.setup: dict | None = None
        self.snapshots: SnapshotBuffer | None = None
        self.state: dict | None = None  # the latest `state` object
        self.own: tuple[float, float] | None = None  # my predicted position
        self.pending: list[Pending] = []
        self.next_seq = 1  # never reset, so seqs keep increasing across games and reconnects
        self.stats = Stats()

    # -- the connection ------------------------------------------------------------

    def link_connecting(self) -> None:
        """We are opening the connection (the name screen says "connecting…")."""
        self.link = CONNECTING
        self.link_error = ""

    def link_open(self) -> None:
        """The connection opened (first time or after a reconnect); `hello` goes out now."""
        self.link = OPEN
        self.link_error = ""

    def link_lost(self) -> None:
        """The connection was lost and toad is bringing it back."""
        if self.link == OPEN:
            self.stats.lost += 1
        self.link = RECONNECTING
        self.pending.clear()  # inputs in flight were lost with the connection

    def link_failed(self, reason: str) -> None:
        """The connection is gone for good (or never opened): the lost screen offers Retry."""
        if self.link == OPEN:
            self.stats.lost += 1
        self.link = FAILED
        self.link_error = reason
        self.pending.clear()

    def link_closed(self) -> None:
        """We closed the connection ourselves (quitting)."""
        self.link = IDLE

    # -- messages ------------------------------------------------------------------

    def apply(self, msg: dict, now: float) -> bool:
        """Update the picture from one server message; ``False`` (and nothing changed) if it makes no sense."""
        handler = getattr(self, "_on_" + str(msg.get("type")), None)
        if handler is None:
            logger.warning("ignoring a message of unknown type: %.200r", msg)
            return False
        try:
            handler(msg, now)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            logger.warning("ignoring a malformed %s message: %.200r", msg.get("type"), msg, exc_info=True)
            return False
        return True

    def _on_welcome(self, msg: dict, now: float) -> None:
        self.me, self.my_name, self.token = str(msg["id"]), str(msg["name"]), str(msg["token"])
        self.tick_rate = int(msg.get("tick_rate", self.tick_rate))
        self.stats.welcomes += 1
        self.lobby_seen = False
        if msg.get("resumed"):
            self.stats.resumed += 1
        if msg.get("resumed") and msg.get("room"):
            self._set_room(msg["room"])
            self.screen = ROOM  # a `start` follows if the game is running
        else:
            self.room = None  # a new player: whatever room we were in is gone
            self._end_game()
            self.screen = LOBBY

    def _on_lobby(self, msg: dict, now: float) -> None:
        self.rooms = [
            RoomInfo(str(r["id"]), str(r["name"]), int(r["players"]), int(r["capacity"]), str(r["state"]))
            for r in msg["rooms"]
        ]
        total = msg.get("total")
        self.total_rooms = max(len(self.rooms), int(total) if total is not None else 0)
        self.online = int(msg.get("online", 0))
        self.lobby_seen = True

    def _on_room(self, msg: dict, now: float) -> None:
        self._set_room(msg["room"])
        if self.screen in (NAME, LOBBY):
            self.screen = ROOM

    def _set_room(self, data: dict) -> None:
        members = [
            Member(str(p["id"]), str(p["name"]), bool(p["ready"]), bool(p["connected"])) for p in data["players"]
        ]
        self.room = Room(
            id=str(data["id"]),
            name=str(data["name"]),
            code=str(data.get("code") or ""),
            private=bool(data.get("private")),
            host=str(data["host"]),
            capacity=int(data["capacity"]),
            state=str(data["state"]),
            players=members,
        )
        if self.room.id not in self.stats.rooms_seen:
            self.stats.rooms_seen.append(self.room.id)

    def _on_left(self, msg: dict, now: float) -> None:
        if msg.get("reason") == "kicked" and self.room is not None:
            self.kicked_from.add(self.room.id)
        self.room = None
        self.result = None
        self._end_game()
        self.screen = LOBBY
        if msg.get("reason") == "expired":
            self.toast("You were away too long: your seat was given up.", now)
        elif msg.get("reason") == "kicked":
            self.toast("You were removed from the room", now)

    def _on_chat(self, msg: dict, now: float) -> None:
        line = ChatLine(str(msg["scope"]), msg.get("from"), str(msg.get("name") or ""), str(msg["text"]))
        self.chat.append(line)
        self.stats.chats.append([line.scope, line.name, line.text])

    def _on_error(self, msg: dict, now: float) -> None:
        code, message = str(msg["code"]), str(msg.get("message") or msg["code"])
        self.stats.errors.append([code, message])
        self.toast(message, now)

    def _on_start(self, msg: dict, now: float) -> None:
        setup = dict(msg["setup"])
        self.tick_rate = int(setup.get("tick_rate", self.tick_rate))
        setup.setdefault("tick_rate", self.tick_rate)
        self.setup = setup
        self.snapshots = SnapshotBuffer(self.tick_rate)
        self.state = None
        self.own = None  # placed by the first `state`
        self.pending.clear()
        self.result = None
        self.screen = GAME
        self.stats.games_started += 1

    def _on_state(self, msg: dict, now: float) -> None:
        tick, state = int(msg["tick"]), msg["state"]
        stats = self.stats
        stats.states += 1
        if stats.first_tick < 0:
            stats.first_tick = tick
        stats.last_tick = tick
        stats.ticks[str(tick)] = state_hash(state)
        while len(stats.ticks) > TICKS_KEPT:
            del stats.ticks[next(iter(stats.ticks))]  # dicts keep insertion order: the oldest goes
        players = state.get("players", {})
        stats.scores = {pid: int(p.get("score", 0)) for pid, p in players.items()}
        if self.screen != GAME or self.snapshots is None:
            return  # a late state after `end`, or before `start`: nothing to draw it on
        self.state = state
        self.snapshots.add(tick, state, now)
        mine = players.get(self.me)
        if mine is not None:
            self._reconcile(float(mine["x"]), float(mine["y"]), int(mine.get("ack", 0)))

    def _reconcile(self, x: float, y: float, ack: int) -> None:
        """Start from the server's position for me and re-apply the inputs it has not applied yet."""
        assert self.setup is not None
        if ack > 0:
            applied = next((p for p in self.pending if p.seq == ack), None)
            if applied is not None:  # how far my prediction was off, for the bot's report
                error = math.hypot(applied.x - x, applied.y - y)
                self.stats.own_error_max = max(self.stats.own_error_max, error)
        self.pending = [p for p in self.pending if p.seq > ack]
        for p in self.pending:
            x, y = game.step(x, y, p.data, self.setup)
            p.x, p.y = x, y
        self.own = (x, y)

    def _on_end(self, msg: dict, now: float) -> None:
        self.result = dict(msg["result"])
        self.stats.games_ended += 1
        self.stats.scores = {str(k): int(v) for k, v in self.result.get("scores", {}).items()}
        self._end_game()
        self.screen = ROOM  # a `room` follows, with everyone's ready flag off

    def _end_game(self) -> None:
        self.setup = None
        self.snapshots = None
        self.state = None
        self.own = None
        self.pending.clear()

    # -- my own moves ----------------------------------------------------------------

    def can_move(self) -> bool:
        """Whether an input would mean anything now: playing, placed by a first `state`, connected."""
        return self.screen == GAME and self.own is not None and self.setup is not None and self.link == OPEN

    def predict(self, data: game.Input) -> int:
        """Move my circle by one input at once and remember it; returns the ``seq`` to send it with."""
        assert self.setup is not None and self.own is not None, "predict() needs can_move()"
        seq = self.next_seq
        self.next_seq += 1
        x, y = game.step(*self.own, data, self.setup)
        self.own = (x, y)
        self.pending.append(Pending(seq, data, x, y))
        # A server that never acknowledges (inputs lost in a reconnect) must not grow this forever.
        del self.pending[: -self.tick_rate * 5]
        return seq

    # -- what the scenes read ----------------------------------------------------------

    def toast(self, text: str, now: float, seconds: float = 4.0) -> None:
        """Show ``text`` over every screen for a few seconds."""
        self.toasts.append((text, now + seconds))
        del self.toasts[:-3]  # three at most on screen

    def current_toasts(self, now: float) -> list[str]:
        """The toasts still showing at ``now`` (the others are dropped)."""
        self.toasts = [(t, until) for t, until in self.toasts if until > now]
        return [t for t, _ in self.toasts]

    def is_host(self) -> bool:
        """Whether I host my room."""
        return self.room is not None and self.room.host == self.me

    def can_start(self, min_players: int = 1) -> bool:
        """Whether the host's Start would be accepted: waiting, every connected member ready, enough of them."""
        room = self.room
        if room is None or room.state != "waiting" or not self.is_host():
            return False
        connected = [m for m in room.players if m.connected]
        return len(connected) >= min_players and all(m.ready for m in connected)

    def color_of(self, pid: str) -> tuple[int, int, int]:
        """A player's colour: the server's from `setup`, else the one the server will give by join order."""
        colors = (self.setup or {}).get("colors", {})
        if pid in colors:
            r, g, b = colors[pid]
            return (int(r), int(g), int(b))
        order = [m.id for m in self.room.players] if self.room else []
        index = order.index(pid) if pid in order else sum(map(ord, pid))
        return PALETTE[index % len(PALETTE)]

    def view(self, now: float) -> game.View:
        """The game as :func:`game.draw` paints it at ``now``: me predicted, the others interpolated."""
        setup = self.setup or {"world": [800, 600], "radius": 16, "speed": 240, "tick_rate": self.tick_rate}
        view = game.View(setup=setup, target=int(setup.get("target", 10)))
        if self.state is None or self.snapshots is None:
            return view
        names = {m.id: m for m in self.room.players} if self.room else {}
        positions = self.snapshots.positions(now)
        for pid, p in self.state.get("players", {}).items():
            x, y = positions.get(pid, (float(p["x"]), float(p["y"])))
            if pid == self.me and self.own is not None:
                x, y = self.own
            member = names.get(pid)
            view.avatars.append(
                game.Avatar(
                    x=x,
                    y=y,
                    color=self.color_of(pid),
                    name=member.name if member else pid,
                    score=int(p.get("score", 0)),
                    me=pid == self.me,
                    connected=member.connected if member else True,
                )
            )
        view.coins = [(float(c[0]), float(c[1])) for c in self.state.get("coins", [])]
        view.time_left = float(self.state.get("time_left", 0.0))
        return view

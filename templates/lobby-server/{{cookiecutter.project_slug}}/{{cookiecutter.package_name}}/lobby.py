"""The lobby: players, rooms, chat, ready and start, seats held for rejoining, and a Game per room.

Pure: no sockets, threads or clocks. The server calls :meth:`Lobby.connect`, :meth:`Lobby.receive`,
:meth:`Lobby.disconnect` and :meth:`Lobby.tick` with the time ``now`` (seconds on a monotonic clock) and
sends what they return: a list of ``(recipients, message)`` pairs, each message a dict for
``protocol.encode()``, and the connections to close. Recipients are always connected players. This file
is the part you keep; game.py is the part you replace.

The rules, in short (the README has the message table):

- ``hello`` first, within ``hello_timeout`` seconds of connecting (or the connection is closed); it
  makes a Player with an id and a secret token, or, with the token of a player whose seat is held,
  takes that player back (same id, name, room, seat, ready flag and score).
- A connection closed with 1000 leaves at once. Any other close holds the player for ``rejoin_window``
  seconds (0: not at all, they leave at once); after that they are removed as if they had left.
- The creator of a room is its host. A host who leaves, whose seat expires or whose connection drops
  hands over to the connected member who joined earliest (if nobody is connected, the first one back
  becomes host). A host who comes back is an ordinary member.
- The host may kick a member, who cannot join that room again while it lives.
- A room with no members left (held seats count) is deleted; a room never outlives its players.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from . import protocol, settings
from .game import Game
from .protocol import ProtocolError

log = logging.getLogger(__name__)

Message = dict[str, Any]
Send = tuple[list["Player"], Message]

CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read like 1 and 0
ERROR_LIMIT, ERROR_WINDOW = 20, 10.0  # this many error replies within this many seconds closes with 1008
CHAT_LIMIT, CHAT_WINDOW = 5, 5.0  # chat lines per player within this many seconds
EXPIRED_TOKENS_KEPT = 1024  # remembered so a late comer hears "expired"; the oldest are forgotten
ABUSE_CLOSE = (1008, "too many bad messages")
HELLO_TIMEOUT = 10.0  # seconds a new connection has to send a valid hello
HELLO_CLOSE = (1008, "say hello first")  # 1008: policy violation
LOBBY_ROOMS = 50  # rooms listed in one lobby message: keeps it far below a client's 64 KiB limit


class Player:
    """One person, from their connection's first message until they leave or their seat expires.

    The server makes one for every new connection; it stays anonymous (``id`` None) until ``hello``.
    """

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.token = ""
        self.room: Room | None = None
        self.ready = False
        self.connected = True
        self.dropped_at = 0.0  # when the connection was lost (while not connected)
        self.last_seq = -1  # the last input seq taken, per connection and round
        self.errors: deque[float] = deque()  # when recent error replies went out
        self.chats: deque[float] = deque()  # when recent chat lines were taken

    def __repr__(self) -> str:
        return f"<Player {self.id} {self.name!r}{'' if self.connected else ' (held)'}>"


@dataclass(eq=False)
class Room:
    """A room: members in join order, a host, and a Game while playing."""

    id: str
    name: str
    code: str
    private: bool
    capacity: int
    host: Player
    members: list[Player] = field(default_factory=list)
    game: Game | None = None
    kicked: set[str] = field(default_factory=set)  # ids of players the host sent away: they cannot rejoin

    @property
    def state(self) -> str:
        return "waiting" if self.game is None else "playing"

    def connected(self) -> list[Player]:
        return [p for p in self.members if p.connected]

    def to_message(self) -> Message:
        """The ``room`` object members see."""
        return {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "private": self.private,
            "host": self.host.id,
            "capacity": self.capacity,
            "state": self.state,
            "players": [{"id": p.id, "name": p.name, "ready": p.ready, "connected": p.connected} for p in self.members],
        }

    def summary(self) -> Message:
        """The line the lobby's room list shows."""
        return {
            "id": self.id,
            "name": self.name,
            "players": len(self.members),
            "capacity": self.capacity,
            "state": self.state,
        }


@dataclass
class Outcome:
    """What :meth:`Lobby.receive` decided about one message."""

    sends: list[Send]
    #: Who this connection stands for from now on: the sender, or the held player a hello took back.
    player: Player
    #: Close this connection with (code, reason): it sent too many bad messages.
    close: tuple[int, str] | None = None


@dataclass
class Ticked:
    """What :meth:`Lobby.tick` decided."""

    sends: list[Send]
    #: Connections to close, with (code, reason): they did not say hello in time.
    closes: list[tuple[Player, tuple[int, str]]] = field(default_factory=list)


class Lobby:
    """Every player and room of one server."""

    def __init__(
        self,
        *,
        tick_rate: int = settings.TICK_RATE,
        rejoin_window: float = settings.REJOIN_WINDOW,
        room_capacity: int = settings.ROOM_CAPACITY,
        hello_timeout: float = HELLO_TIMEOUT,
        seed: int | None = None,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16),
    ) -> None:
        self.tick_rate = tick_rate
        self.rejoin_window = rejoin_window
        self.hello_timeout = hello_timeout
        self.max_capacity = min(room_capacity, Game.MAX_PLAYERS)
        self.rng = random.Random(seed)  # room codes and game seeds; pass a seed for repeatable tests
        self.new_token = new_token
        self.players: dict[str, Player] = {}  # everyone after hello, connected or held, by id
        self.rooms: dict[str, Room] = {}  # by id, in the order they were made
        self.ticks = 0  # ticks so far; a state's "tick" counts across rounds, so it never repeats
        self._by_token: dict[str, Player] = {}
        self._nameless: dict[Player, float] = {}  # connections that have not said hello: when they came
        self._expired: OrderedDict[str, None] = OrderedDict()
        self._player_ids = count(1)
        self._room_ids = count(1)
        self._lobby_changed = False  # the room list or the online count changed since the last tick
        self._handlers: dict[type, Callable[[Player, Any, float], list[Send]]] = {
            protocol.Create: self._create,
            protocol.Join: self._join,
            protocol.Leave: self._leave,
            protocol.Ready: self._ready,
            protocol.Start: self._start,
            protocol.Kick: self._kick,
            protocol.Chat: self._chat,
            protocol.Input: self._input,
        }

    @property
    def online(self) -> int:
        """Players who said hello and are connected now."""
        return sum(p.connected for p in self.players.values())

    # -- what the server calls ---------------------------------------------------------

    def connect(self, now: float) -> Player:
        """A new connection: its Player, nameless until hello, which must come within ``hello_timeout``."""
        player = Player()
        self._nameless[player] = now
        return player

    def receive(self, player: Player, message: str | bytes, now: float) -> Outcome:
        """Handle one message from ``player``'s connection; never raises for anything a client sends."""
        try:
            request = protocol.decode(message)
            if isinstance(request, protocol.Hello):
                return self._hello(player, request, now)
            if player.id is None:
                raise ProtocolError("not_now", "Say hello first.", _type_of(request))
            if self.players.get(player.id) is not player:
                # A player who quit or whose seat expired, on a connection not closed yet: it no longer
                # speaks for anybody, and must not make rooms nobody could ever leave.
                raise ProtocolError("not_now", "Your player is gone: connect again.", _type_of(request))
            return Outcome(self._handlers[type(request)](player, request, now), player)
        except ProtocolError as error:
            log.debug("refused from %r: %s %s", player, error.code, error.message)
            player.errors.append(now)
            while player.errors and player.errors[0] <= now - ERROR_WINDOW:
                player.errors.popleft()
            close = ABUSE_CLOSE if len(player.errors) >= ERROR_LIMIT else None
            if close:
                log.info("closing %s: %s", player.name or "a connection", close[1])
            return Outcome([([player], error.to_message())], player, close)

    def disconnect(self, player: Player, code: int, now: float) -> list[Send]:
        """``player``'s connection closed with ``code``: leave at once (1000) or hold the seat."""
        self._nameless.pop(player, None)
        if player.id is None or self.players.get(player.id) is not player or not player.connected:
            return []  # never said hello, or already gone
        if code == 1000 or self.rejoin_window <= 0:
            sends = self._remove(player, "left", now)
            log.info("%s quit; %d online", player.name, self.online)
            return sends
        player.connected = False
        player.dropped_at = now
        self._lobby_changed = True
        log.info("%s dropped (%d); seat held %g s; %d online", player.name, code, self.rejoin_window, self.online)
        room = player.room
        if room is None:
            return []
        return [
            *self._notice(room, f"{player.name} lost the connection; their seat is held for {self.rejoin_window:g} s"),
            *self._hand_over(room),  # an absent host would block the room for the whole window
            (room.connected(), {"type": "room", "room": room.to_message()}),
        ]

    def tick(self, now: float, dt: float) -> Ticked:
        """Run one tick: every playing room's game and its ``state``, ends, expired seats, the lobby list,
        and connections that did not say hello in time (to close)."""
        self.ticks += 1
        sends: list[Send] = []
        for room in list(self.rooms.values()):
            game = room.game
            if game is None:
                continue
            game.tick(dt)
            # One message per room: the server encodes it once and broadcasts it to every member.
            sends.append((room.connected(), {"type": "state", "tick": self.ticks, "state": game.snapshot()}))
            result = game.result()
            if result is not None:
                sends += self._end(room, result)
        for player in list(self.players.values()):
            if not player.connected and now - player.dropped_at >= self.rejoin_window:
                sends += self._remove(player, "expired", now)
                log.info("%s's seat expired; %d online", player.name, self.online)
        if self._lobby_changed:
            self._lobby_changed = False
            sends.append((self._in_lobby(), self._lobby_message()))
        closes = [(player, HELLO_CLOSE) for player, came in self._nameless.items() if now - came >= self.hello_timeout]
        for player, _ in closes:
            del self._nameless[player]
        return Ticked([(to, message) for to, message in sends if to], closes)

    # -- hello and rejoining -------------------------------------------------------------

    def _hello(self, player: Player, request: protocol.Hello, now: float) -> Outcome:
        if player.id is not None:
            raise ProtocolError("not_now", "You said hello already.", "hello")
        self._nameless.pop(player, None)
        held = self._by_token.get(request.token) if request.token else None
        if held is not None:
            return self._resume(held)
        player.id = f"p{next(self._player_ids)}"
        player.name = request.name
        player.token = self.new_token()
        self.players[player.id] = player
        self._by_token[player.token] = player
        self._lobby_changed = True
        log.info("%s joined as %s; %d online", player.name, player.id, self.online)
        sends: list[Send] = [([player], self._welcome(player, resumed=False))]
        if request.token is not None and request.token in self._expired:
            del self._expired[request.token]
            sends.append(([player], {"type": "left", "reason": "expired"}))  # you came back too late
        sends.append(([player], self._lobby_message()))
        return Outcome(sends, player)

    def _resume(self, player: Player) -> Outcome:
        """A hello with a known token: this connection is ``player`` again."""
        # Still "connected" means the old connection has not been noticed dead yet (a Wi-Fi switch):
        # the new one takes over, and the server closes the old one.
        took_over = player.connected
        player.connected = True
        log.info("%s is back%s; %d online", player.name, " (on a new connection)" if took_over else "", self.online)
        player.last_seq = -1  # the client may number its inputs afresh on a new connection
        player.errors.clear()  # errors count per connection: a new one starts afresh
        self._lobby_changed = True
        room = player.room
        sends: list[Send] = [([player], self._welcome(player, resumed=True))]
        if room is None:
            sends.append(([player], self._lobby_message()))
            return Outcome(sends, player)
        sends += self._notice(room, f"{player.name} is back")
        sends += self._hand_over(room)  # if everyone was away, the first one back hosts
        sends.append((room.connected(), {"type": "room", "room": room.to_message()}))
        if room.game is not None:
            sends.append(([player], {"type": "start", "setup": room.game.setup()}))  # the next state follows
        return Outcome(sends, player)

    def _welcome(self, player: Player, resumed: bool) -> Message:
        return {
            "type": "welcome",
            "id": player.id,
            "name": player.name,
            "token": player.token,
            "resumed": resumed,
            "tick_rate": self.tick_rate,
            # Also sent as a "room" message; here too so a client knows at once where it is.
            "room": player.room.to_message() if player.room else None,
        }

    # -- requests -----------------------------------------------------------------------

    def _create(self, player: Player, request: protocol.Create, now: float) -> list[Send]:
        if player.room is not None:
            raise ProtocolError("not_now", "Leave your room before you create another.", "create")
        capacity = self.max_capacity if request.capacity is None else request.capacity
        if not 2 <= capacity <= self.max_capacity:
            raise ProtocolError("bad_message", f"A room holds 2 to {self.max_capacity} players.", "create")
        room = Room(
            id=f"r{next(self._room_ids)}",
            name=request.name,
            code=self._new_code(),
            private=request.private,
            capacity=capacity,
            host=player,
        )
        self.rooms[room.id] = room
        self._seat(player, room)
        log.info("%s created %s %r%s", player.name, room.id, room.name, " (private)" if room.private else "")
        return [([player], {"type": "room", "room": room.to_message()})]

    def _join(self, player: Player, request: protocol.Join, now: float) -> list[Send]:
        if player.room is not None:
            raise ProtocolError("not_now", "Leave your room before you join another.", "join")
        if request.code is not None:
            room = next((r for r in self.rooms.values() if r.code == request.code), None)
        else:
            room = self.rooms.get(request.room or "")
            if room is not None and room.private:
                room = None  # a private room is joined by its code only
        if room is None:
            raise ProtocolError("no_such_room", "There is no such room (any more).", "join")
        if player.id in room.kicked:
            raise ProtocolError("kicked", "The host of that room sent you away.", "join")
        if room.game is not None:
            raise ProtocolError("already_playing", "That room is playing; join when the round ends.", "join")
        if len(room.members) >= room.capacity:
            raise ProtocolError("room_full", "That room is full.", "join")
        self._seat(player, room)
        log.info("%s joined %s", player.name, room.id)
        return [
            (room.connected(), {"type": "room", "room": room.to_message()}),
            *self._notice(room, f"{player.name} joined"),
        ]

    def _leave(self, player: Player, request: protocol.Leave, now: float) -> list[Send]:
        if player.room is None:
            raise ProtocolError("not_now", "You are not in a room.", "leave")
        log.info("%s left %s", player.name, player.room.id)
        sends = self._unseat(player, f"{player.name} left")
        return [*sends, ([player], {"type": "left", "reason": "left"}), ([player], self._lobby_message())]

    def _ready(self, player: Player, request: protocol.Ready, now: float) -> list[Send]:
        room = player.room
        if room is None or room.game is not None:
            raise ProtocolError("not_now", "You can only get ready in a room that is waiting.", "ready")
        player.ready = request.ready
        return [(room.connected(), {"type": "room", "room": room.to_message()})]

    def _start(self, player: Player, request: protocol.Start, now: float) -> list[Send]:
        room = player.room
        if room is None:
            raise ProtocolError("not_now", "You are not in a room.", "start")
        if room.host is not player:
            raise ProtocolError("not_host", "Only the host can start the round.", "start")
        if room.game is not None:
            raise ProtocolError("not_now", "The round has started already.", "start")
        # Held seats neither block the start nor count towards the minimum: they may never come back.
        present = room.connected()
        if not all(p.ready for p in present) or len(present) < Game.MIN_PLAYERS:
            raise ProtocolError(
                "not_ready", f"Everyone must be ready, and at least {Game.MIN_PLAYERS} of you here.", "start"
            )
        room.game = Game([p.id for p in room.members if p.id], self.rng.getrandbits(32), self.tick_rate)
        for member in room.members:
            member.last_seq = -1
        self._lobby_changed = True
        log.info("game started in %s with %d players", room.id, len(room.members))
        # "room" first, then "start": a client that follows the room's state sees "playing" with its setup next.
        return [
            (present, {"type": "room", "room": room.to_message()}),
            (present, {"type": "start", "setup": room.game.setup()}),
        ]

    def _kick(self, player: Player, request: protocol.Kick, now: float) -> list[Send]:
        room = player.room
        if room is None:
            raise ProtocolError("not_now", "You are not in a room.", "kick")
        if room.host is not player:
            raise ProtocolError("not_host", "Only the host can kick a player.", "kick")
        if request.player == player.id:
            raise ProtocolError("bad_message", "You cannot kick yourself: leave instead.", "kick")
        target = next((p for p in room.members if p.id == request.player), None)
        if target is None:
            raise ProtocolError("bad_message", "That player is not in your room.", "kick")
        room.kicked.add(request.player)
        log.info("%s kicked %s from %s", player.name, target.name, room.id)
        sends = self._unseat(target, f"{target.name} was kicked")
        if target.connected:  # a held seat is simply gone: its player finds themselves in the lobby
            sends += [([target], {"type": "left", "reason": "kicked"}), ([target], self._lobby_message())]
        return sends

    def _chat(self, player: Player, request: protocol.Chat, now: float) -> list[Send]:
        while player.chats and player.chats[0] <= now - CHAT_WINDOW:
            player.chats.popleft()
        if len(player.chats) >= CHAT_LIMIT:
            raise ProtocolError("too_fast", f"At most {CHAT_LIMIT} chat lines in {CHAT_WINDOW:g} seconds.", "chat")
        player.chats.append(now)
        if player.room is not None:
            to, scope = player.room.connected(), "room"
        else:
            to, scope = self._in_lobby(), "lobby"
        return [(to, {"type": "chat", "scope": scope, "from": player.id, "name": player.name, "text": request.text})]

    def _input(self, player: Player, request: protocol.Input, now: float) -> list[Send]:
        room = player.room
        if room is None:
            raise ProtocolError("not_now", "You are not in a room.", "input")
        if room.game is None:
            # Inputs sent before the client heard "end" are still arriving: drop them quietly, or
            # every round's end would cost a client a few errors towards the abuse limit.
            return []
        if request.seq <= player.last_seq:
            raise ProtocolError("bad_message", "An input's seq must be larger than the one before.", "input")
        try:
            room.game.handle_input(player.id or "", request.seq, request.data)
        except ValueError as error:
            raise ProtocolError("bad_input", str(error), "input") from None
        player.last_seq = request.seq
        return []

    # -- seats ---------------------------------------------------------------------------

    def _seat(self, player: Player, room: Room) -> None:
        room.members.append(player)
        player.room = room
        player.ready = False
        self._lobby_changed = True

    def _unseat(self, player: Player, notice: str) -> list[Send]:
        """Take ``player`` out of their room: hand over the host, delete an empty room."""
        room = player.room
        assert room is not None
        room.members.remove(player)
        player.room = None
        player.ready = False
        if room.game is not None:
            room.game.remove_player(player.id or "")
        self._lobby_changed = True
        if not room.members:
            del self.rooms[room.id]
            log.info("%s closed: nobody left", room.id)
            return []
        sends = self._notice(room, notice) + self._hand_over(room)
        sends.append((room.connected(), {"type": "room", "room": room.to_message()}))
        return sends

    def _remove(self, player: Player, reason: str, now: float) -> list[Send]:
        """Forget ``player`` for good: they quit ("left") or their seat ran out ("expired")."""
        sends: list[Send] = []
        if player.room is not None:
            sends = self._unseat(player, f"{player.name} left" if reason == "left" else f"{player.name}'s seat expired")
        del self.players[player.id or ""]
        self._by_token.pop(player.token, None)
        if reason == "expired":
            self._expired[player.token] = None
            while len(self._expired) > EXPIRED_TOKENS_KEPT:
                self._expired.popitem(last=False)
        player.connected = False
        self._lobby_changed = True
        return sends

    def _end(self, room: Room, result: dict[str, Any]) -> list[Send]:
        room.game = None
        for member in room.members:
            member.ready = False
        self._lobby_changed = True
        log.info("game ended in %s: winner %s", room.id, result.get("winner"))
        present = room.connected()
        return [(present, {"type": "end", "result": result}), (present, {"type": "room", "room": room.to_message()})]

    # -- helpers ---------------------------------------------------------------------------

    def _hand_over(self, room: Room) -> list[Send]:
        """Make sure the host is a member who is here: else the connected member who joined earliest."""
        if room.host in room.members and room.host.connected:
            return []
        present = room.connected()
        if not present:
            if room.host not in room.members:
                room.host = room.members[0]  # all away: the earliest held seat, until someone is back
            return []
        room.host = present[0]
        return self._notice(room, f"{room.host.name} is the host now")

    def _notice(self, room: Room, text: str) -> list[Send]:
        """A line from the server in the room's chat."""
        return [(room.connected(), {"type": "chat", "scope": "room", "from": None, "name": "server", "text": text})]

    def _in_lobby(self) -> list[Player]:
        return [p for p in self.players.values() if p.connected and p.room is None]

    def _lobby_message(self) -> Message:
        """The public rooms, at most LOBBY_ROOMS of them: waiting ones first, then playing ones, each
        oldest first; ``total`` counts them all."""
        public = [room for room in self.rooms.values() if not room.private]
        listed = [room for room in public if room.game is None] + [room for room in public if room.game is not None]
        rooms = [room.summary() for room in listed[:LOBBY_ROOMS]]
        return {"type": "lobby", "rooms": rooms, "total": len(public), "online": self.online}

    def _new_code(self) -> str:
        taken = {room.code for room in self.rooms.values()}
        while True:
            code = "".join(self.rng.choice(CODE_LETTERS) for _ in range(4))
            if code not in taken:
                return code


def _type_of(request: protocol.Request) -> str:
    return type(request).__name__.lower()

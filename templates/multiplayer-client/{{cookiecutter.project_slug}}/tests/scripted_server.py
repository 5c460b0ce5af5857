"""A small stand-in for the lobby server, for the tests: one room, the protocol's happy path.

It runs a ``toad.Server`` on 127.0.0.1 (port 0: a free one) polled by a thread of its own,
answers hello (resuming a seat whose token it knows), create, join, ready, start, chat, leave
and input, sends a ``state`` every tick while playing, and ends a game after ``game_ticks``.
It moves players with the client's own ``game.step``, so a correct client predicts it exactly.
Everything it received is in :attr:`received`; wait for a message with :meth:`wait_for`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import toad

from {{ cookiecutter.package_name }} import game
from {{ cookiecutter.package_name }}.model import state_hash

SETUP = {"world": [800, 600], "speed": 240, "radius": 16, "tick_rate": 20, "target": 10, "duration": 90}


class ScriptedServer:
    """Serves on :attr:`url` from a thread until :meth:`stop`.

    ``previous``: a stopped ScriptedServer whose seats, room and running game this one takes over
    (a restart of the real server that kept its state).
    """

    def __init__(self, port: int = 0, previous: ScriptedServer | None = None, game_ticks: int = 10_000) -> None:
        self.seats: dict[str, dict[str, Any]] = previous.seats if previous else {}  # token -> player
        self.room: dict[str, Any] | None = previous.room if previous else None
        self.tick = previous.tick if previous else 0
        self.ticks_left = previous.ticks_left if previous else 0  # > 0 while a game runs
        self.game_ticks = game_ticks
        self.received: list[dict] = []
        self.close_codes: list[int] = []
        self.hashes: dict[int, str] = {}  # tick -> hash of the state sent
        self.lock = threading.Lock()
        self.by_client: dict[Any, dict[str, Any]] = {}
        self.server = toad.Server(max_message_size=65536)
        self.server.start("127.0.0.1", port, block=False)
        self.port = self.server.port
        self.url = f"ws://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    # -- the test's side --------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving: toad closes every client with 1001 (going away), so they reconnect."""
        self.stopping.set()
        self.thread.join(15)

    def wait_for(self, check: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        """The first received message for which ``check(msg)`` is true, waiting at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = next((msg for msg in self.received if check(msg)), None)
            if found is not None:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no such message arrived; got {self.received}")

    # -- the server's thread ------------------------------------------------------------

    def run(self) -> None:
        next_tick = time.monotonic()
        while not self.stopping.is_set():
            for event in self.server.poll():
                if event.type == "message":
                    self.on_message(event.client, json.loads(event.data))
                elif event.type == "close":
                    self.close_codes.append(event.data[0])
                    self.by_client.pop(event.client, None)
            if time.monotonic() >= next_tick:
                next_tick = max(next_tick + 1 / SETUP["tick_rate"], time.monotonic() - 0.1)
                self.on_tick()
            self.server.wait_events(max(0.0, min(0.01, next_tick - time.monotonic())))
        self.server.stop()

    def send(self, client: Any, msg: dict) -> None:
        client.send(json.dumps(msg))

    def in_room(self) -> list[dict[str, Any]]:
        return [p for p in self.seats.values() if self.room and p["id"] in self.room["ids"]]

    def to_room(self, msg: dict) -> None:
        ids = {p["id"] for p in self.in_room()}
        for client, player in list(self.by_client.items()):
            if player["id"] in ids:
                self.send(client, msg)

    def room_msg(self) -> dict:
        assert self.room is not None
        players = [{"id": p["id"], "name": p["name"], "ready": p["ready"], "connected": True} for p in self.in_room()]
        room = {"id": "r1", "name": self.room["name"], "code": "ABCD", "private": self.room["private"]}
        room.update(host=self.room["ids"][0], capacity=8, state="playing" if self.ticks_left else "waiting")
        return {"type": "room", "room": {**room, "players": players}}

    def lobby_msg(self) -> dict:
        rooms = []
        if self.room and not self.room["private"]:
            count, state = len(self.room["ids"]), "playing" if self.ticks_left else "waiting"
            rooms.append({"id": "r1", "name": self.room["name"], "players": count, "capacity": 8, "state": state})
        return {"type": "lobby", "rooms": rooms, "online": len(self.by_client)}

    def on_message(self, client: Any, msg: dict) -> None:
        with self.lock:
            self.received.append(msg)
        kind = msg["type"]
        if kind == "hello":
            self.hello(client, msg)
            return
        player = self.by_client[client]
        if kind == "create":
            self.room = {"name": msg["name"], "private": bool(msg.get("private")), "ids": [player["id"]]}
            self.send(client, self.room_msg())
        elif kind == "join" and self.room:
            self.room["ids"].append(player["id"])
            self.to_room(self.room_msg())
        elif kind == "ready":
            player["ready"] = bool(msg["ready"])
            self.to_room(self.room_msg())
        elif kind == "start" and self.room:
            self.ticks_left = self.game_ticks
            for p in self.in_room():
                p.update(x=100.0, y=100.0, score=0, ack=0, queue=[])
            self.to_room({"type": "start", "setup": self.setup()})
            self.to_room(self.room_msg())
        elif kind == "chat":
            self.to_room({"type": "chat", "scope": "room", "from": player["id"], "name": player["name"], **msg})
        elif kind == "input":
            player["queue"].append((msg["seq"], msg["input"]))
        elif kind == "leave" and self.room:
            self.room["ids"].remove(player["id"])
            self.send(client, {"type": "left", "reason": "left"})
            self.send(client, self.lobby_msg())

    def hello(self, client: Any, msg: dict) -> None:
        token = msg.get("token")
        resumed = token in self.seats
        if not resumed:
            token = f"tok{len(self.seats) + 1}"
            self.seats[token] = {"id": f"p{len(self.seats) + 1}", "name": msg["name"], "ready": False}
        player = self.seats[token]
        self.by_client[client] = player
        seated = player in self.in_room()
        welcome = {"type": "welcome", "id": player["id"], "name": player["name"], "token": token}
        welcome.update(resumed=resumed, tick_rate=SETUP["tick_rate"])
        if resumed and seated:
            welcome["room"] = self.room_msg()["room"]
        self.send(client, welcome)
        if resumed and seated and self.ticks_left:
            self.send(client, {"type": "start", "setup": self.setup()})
        elif not seated:
            self.send(client, self.lobby_msg())

    def setup(self) -> dict:
        return {**SETUP, "colors": {p["id"]: [200, 80, 80] for p in self.in_room()}}

    def on_tick(self) -> None:
        if not self.ticks_left or self.room is None:
            return
        self.tick += 1
        players = self.in_room()
        for p in players:
            if p["queue"]:  # one input per tick, as the real server allows on average
                seq, data = p["queue"].pop(0)
                p["x"], p["y"] = game.step(p["x"], p["y"], data, SETUP)
                p["ack"] = seq
        state = {
            "players": {p["id"]: {"x": p["x"], "y": p["y"], "score": p["score"], "ack": p["ack"]} for p in players},
            "coins": [[400.0, 300.0]],
            "time_left": self.ticks_left / SETUP["tick_rate"],
        }
        self.hashes[self.tick] = state_hash(state)
        self.to_room({"type": "state", "tick": self.tick, "state": state})
        self.ticks_left -= 1
        if not self.ticks_left:
            scores = {p["id"]: p["score"] for p in players}
            self.to_room({"type": "end", "result": {"winner": players[0]["id"], "scores": scores}})
            for p in players:
                p["ready"] = False
            self.to_room(self.room_msg())

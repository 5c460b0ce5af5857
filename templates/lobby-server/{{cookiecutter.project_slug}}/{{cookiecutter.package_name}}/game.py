"""Coin grab: THE PART YOU REPLACE with your own game's rules.

Each player moves a circle in an 800x600 arena; coins appear; touching one scores 1. The first to
10 points wins, or the highest score when 90 seconds are up; a shared top score then is a draw (no winner).
A player whose connection dropped keeps their seat and score, so they can still win.

Pure and deterministic: no sockets, threads or clocks, and all chance comes from ``random.Random(seed)``,
so a test (or a replay) gets the same game from the same seed and inputs. The lobby owns one Game per
playing room and only uses what is below: keep these methods and messages, change everything else.

Movement must match the client's ``game.step()`` exactly, or its prediction drifts: one input moves
``speed / tick_rate`` pixels in its direction (diagonals normalised), and the circle's centre is then
clamped to ``[radius, world - radius]`` so the whole circle stays in the arena.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from . import settings

WORLD = (800, 600)
SPEED = 240  # pixels per second while a key is held
RADIUS = 16  # a player's circle
COIN_RADIUS = 10
COINS = 5  # coins on the field at any time
COIN_MARGIN = 40  # coins appear at least this far from the walls
TARGET = 10  # points to win
DURATION = 90  # seconds in a round
MAX_BUDGET = 5  # inputs a player may save up while idle or lagging
# Inputs waiting per player; past this the OLDEST is dropped. A full queue means the client sends faster
# than one input per tick (or the server fell far behind): keeping the newest inputs bounds the input
# lag at MAX_QUEUE ticks and moves the circle where the player is steering now. Dropping the newest
# would keep a fast sender permanently MAX_QUEUE ticks behind. Either way the client's prediction is
# corrected by the next state (its pending inputs are replayed from the server's "ack").
MAX_QUEUE = 10
COLORS = [(231, 76, 60), (52, 152, 219), (46, 204, 113), (241, 196, 15), (155, 89, 182), (230, 126, 34)]
COLORS += [(26, 188, 156), (236, 240, 241)]


def step(x: float, y: float, dx: int, dy: int, distance: float) -> tuple[float, float]:
    """Where one input ``(dx, dy)`` takes a circle at ``(x, y)``: the client's ``step()`` mirrors this."""
    if dx or dy:
        length = math.hypot(dx, dy)
        x += dx / length * distance
        y += dy / length * distance
    return min(max(x, RADIUS), WORLD[0] - RADIUS), min(max(y, RADIUS), WORLD[1] - RADIUS)


class _Player:
    def __init__(self, x: float, y: float, color: tuple[int, int, int]) -> None:
        self.x, self.y, self.color = x, y, color
        self.score = 0
        self.ack = 0  # seq of the last input applied (0: none yet, so clients number inputs from 1)
        self.budget = 0.0  # inputs it may apply now: grows with time, each applied input costs 1
        self.inputs: deque[tuple[int, int, int]] = deque(maxlen=MAX_QUEUE)  # (seq, dx, dy); full: drops oldest


class Game:
    """One round of the game in one room.

    The lobby calls ``handle_input`` as inputs arrive, ``tick(dt)`` at the tick rate, sends ``snapshot()``
    to the room after every tick, and ends the round when ``result()`` is not None.
    """

    MIN_PLAYERS = 1  # the host may start alone, to try the game; raise it for your game
    MAX_PLAYERS = 8  # rooms never hold more than this, whatever ROOM_CAPACITY says

    def __init__(self, player_ids: list[str], seed: int, tick_rate: int = settings.TICK_RATE) -> None:
        self.rng = random.Random(seed)
        self.tick_rate = tick_rate
        self.step_length = SPEED / tick_rate
        self.players: dict[str, _Player] = {}  # in join order
        self._joined = 0
        for pid in player_ids:
            self._add_player(pid)
        self.coins = [self._new_coin() for _ in range(COINS)]
        self.time_left = float(DURATION)
        self._result: dict[str, Any] | None = None

    def setup(self) -> dict[str, Any]:
        """What the clients need to draw and predict the game; sent in ``start``."""
        return {
            "world": list(WORLD),
            "speed": SPEED,
            "radius": RADIUS,
            "coin_radius": COIN_RADIUS,
            "tick_rate": self.tick_rate,
            "colors": {pid: list(p.color) for pid, p in self.players.items()},
            "target": TARGET,
            "duration": DURATION,
        }

    def _add_player(self, pid: str) -> None:
        """Put a player in the game: spread around the centre, by the order they came in.

        Only the round's players are added, when it starts: the lobby refuses joins into a playing room.
        """
        angle = 2 * math.pi * (self._joined % self.MAX_PLAYERS) / self.MAX_PLAYERS
        x = WORLD[0] / 2 + 200 * math.cos(angle)
        y = WORLD[1] / 2 + 200 * math.sin(angle)
        self.players[pid] = _Player(x, y, COLORS[self._joined % len(COLORS)])
        self._joined += 1

    def remove_player(self, pid: str) -> None:
        """Take out a player who left the room or whose seat expired (their score goes too)."""
        self.players.pop(pid, None)

    def handle_input(self, pid: str, seq: int, data: object) -> None:
        """Queue one input ``{"dx": -1|0|1, "dy": -1|0|1}`` for the next ticks; ValueError if it is not one."""
        player = self.players.get(pid)
        if player is None:
            raise ValueError("You are not playing in this round.")
        if not isinstance(data, dict):
            raise ValueError('An input is an object like {"dx": 1, "dy": 0}.')
        dx, dy = data.get("dx"), data.get("dy")
        # type() is int, not isinstance(): true/false and 1.0 are not directions.
        if type(dx) is not int or type(dy) is not int or dx not in (-1, 0, 1) or dy not in (-1, 0, 1):
            raise ValueError("An input's dx and dy must each be -1, 0 or 1.")
        player.inputs.append((seq, dx, dy))

    def tick(self, dt: float) -> None:
        """Advance the round by ``dt`` seconds: apply queued inputs within each player's budget, collect coins."""
        if self._result is not None:
            return
        for pid, player in self.players.items():
            # One input per tick's worth of time on average: the budget grows by the ticks that dt
            # spans, so a late tick (the server runs one tick with the real dt instead of catching up)
            # applies every input that real time allowed, and no lag builds up. Sending faster gains no
            # speed, and a burst after a lag spike (up to MAX_BUDGET inputs) is still applied.
            player.budget = min(MAX_BUDGET, player.budget + dt * self.tick_rate)
            while player.budget >= 1 - 1e-9 and player.inputs:  # 1e-9: float sums like 0.1 * 3 * 20
                seq, dx, dy = player.inputs.popleft()
                player.budget -= 1
                player.x, player.y = step(player.x, player.y, dx, dy, self.step_length)
                player.ack = seq
                self._collect(player)
                if player.score >= TARGET:
                    self._finish(winner=pid)
                    return
        self.time_left = max(0.0, self.time_left - dt)
        if self.time_left <= 0:
            # The best score wins; a shared best score (0-0 too) is a draw: no winner.
            best = max((p.score for p in self.players.values()), default=0)
            leaders = [pid for pid, p in self.players.items() if p.score == best]
            self._finish(winner=leaders[0] if len(leaders) == 1 else None)

    def snapshot(self) -> dict[str, Any]:
        """The state every member receives after each tick."""
        return {
            "players": {pid: {"x": p.x, "y": p.y, "score": p.score, "ack": p.ack} for pid, p in self.players.items()},
            "coins": [list(coin) for coin in self.coins],
            "time_left": round(self.time_left, 3),
        }

    def result(self) -> dict[str, Any] | None:
        """``{"winner": id or None, "scores": {id: points}}`` once the round is over, else None.

        ``winner`` is None for a draw: the time ran out with the best score shared.
        """
        return self._result

    # -- inside the rules ---------------------------------------------------------------

    def _new_coin(self) -> tuple[int, int]:
        return (
            self.rng.randint(COIN_MARGIN, WORLD[0] - COIN_MARGIN),
            self.rng.randint(COIN_MARGIN, WORLD[1] - COIN_MARGIN),
        )

    def _collect(self, player: _Player) -> None:
        for i, (cx, cy) in enumerate(self.coins):
            if math.hypot(player.x - cx, player.y - cy) <= RADIUS + COIN_RADIUS:
                player.score += 1
                self.coins[i] = self._new_coin()  # in place, so the coin list keeps its order

    def _finish(self, winner: str | None) -> None:
        self._result = {"winner": winner, "scores": {pid: p.score for pid, p in self.players.items()}}

"""THE PART YOU REPLACE: the game's input, movement rule and drawing ("coin grab").

Everything here is about *this* game; the lobby, rooms, chat, networking,
prediction and interpolation around it do not change when the game does.
To make another game, keep the four functions' signatures and rewrite them,
together with the server's ``game.py``:

- :func:`read_input` turns the keys held down into one input dict (sent once per tick);
- :func:`step` moves by one input, by *the same rule as the server* (keep the two in sync,
  or the player's own circle jumps back every time a ``state`` arrives);
- :func:`bot_input` is what ``--bot`` presses;
- :func:`draw` paints a :class:`View` of the game.

``step`` and ``read_input`` are pure (no pygame display, no clock), so they are tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pygame

from .ui import fit, render

#: The top of the window above the arena holds the score bar.
BAR_HEIGHT = 40

Input = dict[str, int]


def read_input(pressed: Sequence[bool]) -> Input | None:
    """The input for one tick from the keys held down (arrows or WASD); ``None`` when idle.

    ``pressed`` is ``pygame.key.get_pressed()`` (anything indexable by key code).
    Returns ``{"dx": -1|0|1, "dy": -1|0|1}``; opposite keys cancel out.
    """
    dx = int(pressed[pygame.K_RIGHT] or pressed[pygame.K_d]) - int(pressed[pygame.K_LEFT] or pressed[pygame.K_a])
    dy = int(pressed[pygame.K_DOWN] or pressed[pygame.K_s]) - int(pressed[pygame.K_UP] or pressed[pygame.K_w])
    if dx == 0 and dy == 0:
        return None  # nothing held: send nothing, the server keeps us still
    return {"dx": dx, "dy": dy}


def step(x: float, y: float, data: Input, setup: dict) -> tuple[float, float]:
    """Where one input moves a circle at (x, y): the server's rule, so prediction matches it.

    Moves ``speed / tick_rate`` pixels in the direction (diagonals normalised, so
    they are not faster) and clamps the centre so the whole circle stays in the world.
    """
    dx, dy = data.get("dx", 0), data.get("dy", 0)
    length = math.hypot(dx, dy)
    if length == 0:
        return x, y
    distance = setup["speed"] / setup["tick_rate"]
    width, height = setup["world"]
    radius = setup["radius"]
    x = min(max(x + dx / length * distance, radius), width - radius)
    y = min(max(y + dy / length * distance, radius), height - radius)
    return x, y


def bot_input(me: tuple[float, float] | None, coins: Sequence[Sequence[float]], setup: dict) -> Input | None:
    """What the bot presses this tick: towards the nearest coin (``None`` when there is none or it is here)."""
    if me is None or not coins:
        return None
    x, y = me
    tx, ty = min(coins, key=lambda c: (c[0] - x) ** 2 + (c[1] - y) ** 2)
    half_step = setup["speed"] / setup["tick_rate"] / 2  # closer than that on an axis: stop on it
    dx = 0 if abs(tx - x) <= half_step else (1 if tx > x else -1)
    dy = 0 if abs(ty - y) <= half_step else (1 if ty > y else -1)
    if dx == 0 and dy == 0:
        return None
    return {"dx": dx, "dy": dy}


@dataclass
class Avatar:
    """One player as drawn: where, their colour, name and score."""

    x: float
    y: float
    color: tuple[int, int, int]
    name: str
    score: int
    me: bool = False
    connected: bool = True


@dataclass
class View:
    """Everything :func:`draw` needs, built by the game scene from the model each frame."""

    setup: dict
    avatars: list[Avatar] = field(default_factory=list)
    coins: list[tuple[float, float]] = field(default_factory=list)
    time_left: float = 0.0
    target: int = 10


def draw(surface: pygame.Surface, view: View) -> None:
    """Paint the game: the score bar on top, the arena below it (offset by :data:`BAR_HEIGHT`)."""
    width = surface.get_width()
    radius = view.setup.get("radius", 16)
    arena = pygame.Rect(0, BAR_HEIGHT, *view.setup.get("world", (800, 600)))
    pygame.draw.rect(surface, (24, 28, 38), arena)
    for gx in range(arena.left, arena.right, 50):  # a faint grid, so movement is visible
        pygame.draw.line(surface, (32, 37, 50), (gx, arena.top), (gx, arena.bottom))
    for gy in range(arena.top, arena.bottom, 50):
        pygame.draw.line(surface, (32, 37, 50), (arena.left, gy), (arena.right, gy))
    for cx, cy in view.coins:
        pygame.draw.circle(surface, (250, 204, 21), (cx, cy + BAR_HEIGHT), 8)
        pygame.draw.circle(surface, (161, 98, 7), (cx, cy + BAR_HEIGHT), 8, 2)
    for avatar in sorted(view.avatars, key=lambda a: a.me):  # mine on top
        center = (avatar.x, avatar.y + BAR_HEIGHT)
        color = avatar.color if avatar.connected else (90, 90, 90)
        pygame.draw.circle(surface, color, center, radius)
        if avatar.me:
            pygame.draw.circle(surface, (255, 255, 255), center, radius + 3, 2)
        # render() never raises, whatever the name (see ui.render); fit() keeps a long one short.
        label = render(fit(avatar.name, 20, 160), 20, (230, 232, 240))
        surface.blit(label, label.get_rect(midbottom=(center[0], center[1] - radius - 4)))

    pygame.draw.rect(surface, (14, 16, 24), (0, 0, width, BAR_HEIGHT))
    pygame.draw.line(surface, (60, 66, 84), (0, BAR_HEIGHT - 1), (width, BAR_HEIGHT - 1))
    x = 10
    for avatar in sorted(view.avatars, key=lambda a: -a.score):
        pygame.draw.circle(surface, avatar.color, (x + 8, BAR_HEIGHT // 2), 7)
        color = (255, 255, 255) if avatar.me else (200, 204, 214)
        text = render(f"{fit(avatar.name, 24, 140)} {avatar.score}", 24, color)
        surface.blit(text, (x + 20, BAR_HEIGHT // 2 - text.get_height() // 2))
        x += 32 + text.get_width()
    seconds = max(0, math.ceil(view.time_left))
    clock = render(f"{seconds // 60}:{seconds % 60:02d}   first to {view.target}", 28, (255, 255, 255))
    surface.blit(clock, clock.get_rect(midright=(width - 12, BAR_HEIGHT // 2)))

"""The replaceable game rules: input from keys, the movement step, the bot's choice."""

import math

import pygame
import pytest

from {{ cookiecutter.package_name }} import game

SETUP = {"world": [800, 600], "speed": 240, "radius": 16, "tick_rate": 20}


class Keys:
    """Stands in for ``pygame.key.get_pressed()``: the keys listed are held."""

    def __init__(self, *held: int) -> None:
        self.held = set(held)

    def __getitem__(self, key: int) -> bool:
        return key in self.held


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ((), None),
        ((pygame.K_RIGHT,), {"dx": 1, "dy": 0}),
        ((pygame.K_a,), {"dx": -1, "dy": 0}),
        ((pygame.K_w, pygame.K_d), {"dx": 1, "dy": -1}),
        ((pygame.K_DOWN, pygame.K_s), {"dx": 0, "dy": 1}),
        ((pygame.K_LEFT, pygame.K_RIGHT), None),  # opposite keys cancel: nothing to send
    ],
)
def test_read_input(held: tuple[int, ...], expected: dict | None) -> None:
    assert game.read_input(Keys(*held)) == expected


def test_step_moves_speed_over_tick_rate() -> None:
    assert game.step(100, 100, {"dx": 1, "dy": 0}, SETUP) == (112, 100)
    assert game.step(100, 100, {"dx": 0, "dy": -1}, SETUP) == (100, 88)


def test_step_normalises_diagonals() -> None:
    x, y = game.step(100, 100, {"dx": 1, "dy": 1}, SETUP)
    assert math.hypot(x - 100, y - 100) == pytest.approx(12)


def test_step_keeps_the_circle_in_the_world() -> None:
    assert game.step(20, 590, {"dx": -1, "dy": 1}, SETUP) == (16, 584)
    assert game.step(790, 10, {"dx": 1, "dy": -1}, SETUP) == (784, 16)


def test_step_without_direction_stays() -> None:
    assert game.step(50, 60, {"dx": 0, "dy": 0}, SETUP) == (50, 60)


def test_bot_heads_for_the_nearest_coin() -> None:
    assert game.bot_input((100, 100), [[500, 100], [100, 300]], SETUP) == {"dx": 0, "dy": 1}
    assert game.bot_input((100, 100), [[50, 40]], SETUP) == {"dx": -1, "dy": -1}
    assert game.bot_input((100, 100), [[103, 98]], SETUP) is None  # already there
    assert game.bot_input((100, 100), [], SETUP) is None
    assert game.bot_input(None, [[1, 1]], SETUP) is None

"""game.py: coin grab, ticked by hand."""

from __future__ import annotations

import math

import pytest

from {{ cookiecutter.package_name }}.game import COIN_RADIUS, RADIUS, TARGET, WORLD, Game, step


def make(players: tuple[str, ...] = ("a", "b"), seed: int = 1, tick_rate: int = 20) -> Game:
    return Game(list(players), seed, tick_rate)


def where(game: Game, pid: str) -> tuple[float, float]:
    state = game.snapshot()["players"][pid]
    return state["x"], state["y"]


def test_setup_tells_the_client_everything_it_draws_and_predicts_with() -> None:
    setup = make().setup()
    assert setup["world"] == [800, 600] and setup["speed"] == 240 and setup["radius"] == RADIUS
    assert setup["tick_rate"] == 20 and setup["target"] == TARGET and setup["duration"] == 90
    assert set(setup["colors"]) == {"a", "b"} and setup["colors"]["a"] != setup["colors"]["b"]


def test_the_same_seed_and_inputs_give_the_same_game() -> None:
    games = [make(seed=7), make(seed=7)]
    for game in games:
        for seq in range(1, 30):
            game.handle_input("a", seq, {"dx": 1, "dy": seq % 2})
            game.tick(0.05)
    assert games[0].snapshot() == games[1].snapshot()
    assert make(seed=7).snapshot()["coins"] != make(seed=8).snapshot()["coins"]


def test_one_input_moves_one_step_and_diagonals_are_normalised() -> None:
    game = make()
    x, y = where(game, "a")
    game.handle_input("a", 1, {"dx": 1, "dy": 0})
    game.tick(0.05)
    assert where(game, "a") == (x + 12, y)  # 240 px/s at 20 ticks
    game.handle_input("a", 2, {"dx": -1, "dy": 1})
    game.tick(0.05)
    nx, ny = where(game, "a")
    assert math.hypot(nx - (x + 12), ny - y) == pytest.approx(12)
    assert game.snapshot()["players"]["a"]["ack"] == 2
    assert game.snapshot()["players"]["b"]["ack"] == 0  # no input applied yet


def test_the_step_rule_clamps_the_circle_inside_the_arena() -> None:
    assert step(RADIUS + 1, 300, -1, 0, 12) == (RADIUS, 300)
    assert step(WORLD[0] - RADIUS, WORLD[1] - RADIUS, 1, 1, 12) == (WORLD[0] - RADIUS, WORLD[1] - RADIUS)
    game = make(("a",))
    for seq in range(1, 200):
        game.handle_input("a", seq, {"dx": -1, "dy": -1})
        game.tick(0.05)
    assert where(game, "a") == (RADIUS, RADIUS)


def test_sending_faster_gains_no_speed_but_a_burst_is_absorbed() -> None:
    game = make()
    x, _ = where(game, "a")
    for seq in range(1, 9):  # eight inputs at once
        game.handle_input("a", seq, {"dx": 1, "dy": 0})
    game.tick(0.05)  # budget 1
    assert where(game, "a")[0] == x + 12
    game.tick(0.05)
    game.tick(0.05)
    game.tick(0.05)  # one input per tick, never more
    assert where(game, "a")[0] == x + 48
    assert game.snapshot()["players"]["a"]["ack"] == 4


def test_idle_ticks_save_up_to_five_inputs() -> None:
    game = make()
    x, _ = where(game, "a")
    for _ in range(10):
        game.tick(0.05)
    for seq in range(1, 10):
        game.handle_input("a", seq, {"dx": 1, "dy": 0})
    game.tick(0.05)
    assert where(game, "a")[0] == x + 5 * 12


def test_a_long_queue_drops_the_oldest_inputs() -> None:
    game = make()
    for seq in range(1, 16):
        game.handle_input("a", seq, {"dx": 0, "dy": 1})
    game.tick(0.05)
    assert game.snapshot()["players"]["a"]["ack"] == 6  # 1-5 were dropped; 6 is the oldest kept


def test_touching_a_coin_scores_and_a_new_coin_appears() -> None:
    game = make(("a",))
    coin = game.coins[0]
    x, y = where(game, "a")
    game.players["a"].x, game.players["a"].y = coin[0] - RADIUS - COIN_RADIUS - 5, coin[1]
    game.handle_input("a", 1, {"dx": 1, "dy": 0})
    game.tick(0.05)
    state = game.snapshot()
    assert state["players"]["a"]["score"] == 1
    assert list(coin) not in state["coins"] and len(state["coins"]) == 5


def test_the_first_to_the_target_wins() -> None:
    game = make()
    game.players["b"].score = TARGET - 1
    coin = game.coins[0]
    game.players["b"].x, game.players["b"].y = coin[0] - 20, coin[1]
    game.handle_input("b", 1, {"dx": 1, "dy": 0})
    assert game.result() is None
    game.tick(0.05)
    result = game.result()
    assert result is not None and result["winner"] == "b" and result["scores"]["b"] == TARGET


def test_when_time_is_up_the_best_score_wins() -> None:
    game = make(("a", "b", "c"))
    game.players["c"].score = 2
    game.players["b"].score = 1
    game.tick(60)
    assert game.result() is None and game.snapshot()["time_left"] == pytest.approx(30)
    game.tick(31)
    assert game.result() == {"winner": "c", "scores": {"a": 0, "b": 1, "c": 2}}
    assert game.snapshot()["time_left"] == 0
    before = game.snapshot()
    game.tick(1)
    assert game.snapshot() == before  # over is over


@pytest.mark.parametrize("scores", [(0, 2, 2), (0, 0, 0)])
def test_a_shared_best_score_when_time_is_up_is_a_draw(scores: tuple[int, int, int]) -> None:
    game = make(("a", "b", "c"))
    for pid, score in zip("abc", scores, strict=True):
        game.players[pid].score = score
    game.tick(91)
    assert game.result() == {"winner": None, "scores": dict(zip("abc", scores, strict=True))}


def test_players_can_be_removed() -> None:
    game = make(("a", "b"))
    game.remove_player("a")
    assert set(game.snapshot()["players"]) == {"b"}
    with pytest.raises(ValueError):
        game.handle_input("a", 1, {"dx": 1, "dy": 0})
    game.tick(91)
    assert game.result() == {"winner": "b", "scores": {"b": 0}}


def test_late_ticks_apply_the_inputs_that_real_time_allowed() -> None:
    # The client sends one input every 1/20 s; the server, running late, ticks every 3/20 s with the
    # real dt (and now and then on time): every input is applied, none waits or is dropped.
    game = make(("a",))
    x, _ = where(game, "a")
    seq = 0
    for dt in [0.15, 0.05, 0.15, 0.1, 0.15, 0.15, 0.05, 0.2, 0.15, 0.15, 0.15, 0.1]:
        for _ in range(round(dt / 0.05)):
            seq += 1
            game.handle_input("a", seq, {"dx": 1, "dy": 0})
        game.tick(dt)
        assert game.snapshot()["players"]["a"]["ack"] == seq
    assert seq == 31 and where(game, "a")[0] == pytest.approx(min(x + 31 * 12, WORLD[0] - RADIUS))


def test_the_budget_still_grows_one_input_per_tick_s_worth_and_stops_at_five() -> None:
    game = make(("a",))
    for seq in range(1, 11):
        game.handle_input("a", seq, {"dx": 0, "dy": 1})
    game.tick(0.025)  # half a tick: nothing yet
    assert game.snapshot()["players"]["a"]["ack"] == 0
    game.tick(0.025)
    assert game.snapshot()["players"]["a"]["ack"] == 1
    game.tick(3.0)  # a 3 s stall: at most five at once
    assert game.snapshot()["players"]["a"]["ack"] == 6


@pytest.mark.parametrize(
    "data",
    [
        None,
        [1, 0],
        {},
        {"dx": 1},
        {"dx": 2, "dy": 0},
        {"dx": True, "dy": 0},
        {"dx": 1.0, "dy": 0},
        {"dx": "1", "dy": 0},
    ],
)
def test_bad_inputs_are_refused_with_a_reason(data: object) -> None:
    game = make()
    with pytest.raises(ValueError, match="."):
        game.handle_input("a", 1, data)
    game.tick(0.05)
    assert game.snapshot()["players"]["a"]["ack"] == 0

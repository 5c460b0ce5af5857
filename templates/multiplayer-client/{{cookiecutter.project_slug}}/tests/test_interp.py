"""Interpolation of the other players between snapshots, drawn 2 ticks in the past."""

import pytest

from {{ cookiecutter.package_name }} import interp


def state(**players: tuple[float, float]) -> dict:
    return {"players": {pid: {"x": x, "y": y, "score": 0, "ack": 0} for pid, (x, y) in players.items()}}


def test_interpolates_between_the_snapshots_around_the_tick() -> None:
    snaps = [interp.Snapshot(10, state(a=(0, 0))), interp.Snapshot(11, state(a=(10, 20)))]
    assert interp.interpolate_at(snaps, 10.25) == {"a": (2.5, 5.0)}


def test_holds_at_both_ends_and_never_extrapolates() -> None:
    snaps = [interp.Snapshot(10, state(a=(0, 0))), interp.Snapshot(12, state(a=(10, 0)))]
    assert interp.interpolate_at(snaps, 3) == {"a": (0.0, 0.0)}
    assert interp.interpolate_at(snaps, 99) == {"a": (10.0, 0.0)}


def test_a_player_who_appears_is_shown_where_they_are() -> None:
    assert interp.lerp_players({"a": (0, 0)}, {"a": (4, 4), "b": (7, 8)}, 0.5) == {"a": (2, 2), "b": (7, 8)}


def test_buffer_renders_two_ticks_behind_the_newest() -> None:
    buffer = interp.SnapshotBuffer(tick_rate=20)
    for tick in range(5):
        buffer.add(tick, state(a=(tick * 10.0, 0)), now=100 + tick / 20)
    # At the moment tick 4 arrived, the others are drawn at tick 2.
    assert buffer.render_tick(100 + 4 / 20) == pytest.approx(2)
    assert buffer.positions(100 + 4 / 20)["a"][0] == pytest.approx(20)
    assert buffer.positions(100 + 4.5 / 20)["a"][0] == pytest.approx(25)


def test_buffer_ignores_old_and_repeated_ticks_and_late_arrivals_move_the_clock_slowly() -> None:
    buffer = interp.SnapshotBuffer(tick_rate=10)
    buffer.add(5, state(a=(1, 1)), now=10.5)
    buffer.add(5, state(a=(9, 9)), now=10.6)
    buffer.add(4, state(a=(9, 9)), now=10.6)
    assert [s.tick for s in buffer.snapshots] == [5]
    assert buffer.offset == pytest.approx(10.0)
    buffer.add(6, state(a=(2, 2)), now=11.6)  # one second late
    assert buffer.offset is not None and 10.0 < buffer.offset < 10.1
    buffer.add(7, state(a=(3, 3)), now=10.65)  # early: the clock follows at once
    assert buffer.offset == pytest.approx(9.95)
    latest = buffer.latest()
    assert latest is not None and latest.tick == 7

"""PURE: a buffer of the server's snapshots, and the other players drawn a little in the past.

Snapshots arrive ``tick_rate`` times a second, unevenly. Drawing the other players
exactly where the newest snapshot says makes them stutter; drawing them at
``now - 2 ticks``, between the two snapshots around that moment, makes them glide,
at the cost of showing them 2 ticks late (100 ms at 20 ticks/s). The player's own
circle is not drawn from here: it is predicted (see ``model.py``).

Time: the server numbers its ticks, so the buffer keeps an estimate of the local
clock at which tick 0 would have arrived (the *offset*), and renders at
``(now - offset) * tick_rate - DELAY_TICKS`` in ticks. No clock is read here: ``now`` is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

#: How far in the past the others are drawn, in ticks. Two covers one late or lost snapshot.
DELAY_TICKS = 2.0


@dataclass(frozen=True)
class Snapshot:
    """One ``state`` message: its tick and its ``state`` object."""

    tick: int
    state: dict


class SnapshotBuffer:
    """The last second or so of snapshots, and positions interpolated between them."""

    def __init__(self, tick_rate: float, size: int = 64) -> None:
        self.tick_rate = float(tick_rate)
        self.snapshots: deque[Snapshot] = deque(maxlen=size)
        self.offset: float | None = None  # local time of tick 0, estimated

    def add(self, tick: int, state: dict, now: float) -> None:
        """Keep the snapshot of ``tick``, received at local time ``now``; older or repeated ticks are ignored."""
        if self.snapshots and tick <= self.snapshots[-1].tick:
            return
        self.snapshots.append(Snapshot(tick, state))
        sample = now - tick / self.tick_rate
        if self.offset is None or sample < self.offset:
            self.offset = sample  # an early arrival: the network was faster than we thought
        else:
            self.offset += (sample - self.offset) * 0.05  # drift up slowly, so one late packet does not jerk

    def latest(self) -> Snapshot | None:
        """The newest snapshot, or ``None`` before the first."""
        return self.snapshots[-1] if self.snapshots else None

    def render_tick(self, now: float) -> float:
        """The (fractional) tick to draw the others at, at local time ``now``."""
        if self.offset is None:
            return 0.0
        return (now - self.offset) * self.tick_rate - DELAY_TICKS

    def positions(self, now: float) -> dict[str, tuple[float, float]]:
        """Every player's position at :meth:`render_tick`: interpolated, or held at the ends of the buffer."""
        if not self.snapshots:
            return {}
        return interpolate_at(list(self.snapshots), self.render_tick(now))


def interpolate_at(snapshots: list[Snapshot], tick: float) -> dict[str, tuple[float, float]]:
    """Positions at fractional ``tick`` from snapshots in tick order (held at the first and the last).

    A player only in the later snapshot appears there; one only in the earlier stays there until it is gone.
    """
    if tick <= snapshots[0].tick:
        return _points(snapshots[0].state)
    for before, after in pairwise(snapshots):
        if before.tick <= tick < after.tick:
            t = (tick - before.tick) / (after.tick - before.tick)
            return lerp_players(_points(before.state), _points(after.state), t)
    return _points(snapshots[-1].state)  # past the newest: hold it, never guess ahead


def lerp_players(
    a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]], t: float
) -> dict[str, tuple[float, float]]:
    """Each player of ``b`` at fraction ``t`` (0..1) of the way from ``a`` to ``b``."""
    out = {}
    for pid, (bx, by) in b.items():
        if pid in a:
            ax, ay = a[pid]
            out[pid] = (ax + (bx - ax) * t, ay + (by - ay) * t)
        else:
            out[pid] = (bx, by)
    return out


def _points(state: dict) -> dict[str, tuple[float, float]]:
    return {pid: (float(p["x"]), float(p["y"])) for pid, p in state.get("players", {}).items()}

"""Capacity of the generated lobby server: how many players can one process hold at 20 ticks a second?

    python benchmarks/lobby.py                          # 16 to 768 players, 20 s each (about 2.5 minutes)
    python benchmarks/lobby.py --players 16,64 --seconds 10
    python benchmarks/lobby.py --quick                  # 16 and 64 players for 5 s: a smoke run
    python benchmarks/lobby.py --out /tmp/lobby.json    # the JSON there, the table printed (nothing written here)
    python benchmarks/lobby.py --table benchmarks/results/lobby.json

The server is the one a game-jam team gets: ``templates/lobby-server`` baked with its default answers
(cookiecutter's Python API, into a temporary folder) and started as ``python -m my_game_server --host
127.0.0.1 --port 0 --log-level WARNING``, this checkout's toad first on its path. At WARNING it prints
nothing (the "serving on" line is INFO), so its port is read from ``/proc``: the listening TCP socket
among the process's descriptors. A fresh server serves each player count.

The players are this process: raw non-blocking sockets on one selector, frames masked by hand and
server frames parsed just enough (see ``rawpeers.py``). Each player connects, says ``hello``, and the
players meet in rooms of 8: the first of each eight creates the room, the others join it (by room id
and by code, alternately) and everyone sends ``ready``; the host sends ``start`` once its ``room``
message shows all eight ready. While playing, every player sends one ``input`` per server tick
(``{"dx": 1, "dy": 0}`` and ``{"dx": -1, "dy": 0}`` in turn, seq counting up from 1), spread over the
tick in 10 slots as real clients would be, and a ``chat`` line every 4-6 s. A round ends at 10 points
(the back-and-forth rarely touches a coin) or after 90 s: on ``end`` everyone sends ``ready`` again
and the host starts the next round, so the load stays steady.

Once every player has seen ``start``, and after a short warm-up, a window of ``--seconds`` measures:

- the server's CPU (``/proc/PID/stat`` utime + stime, as cores used), and its busiest thread's: the
  game loop and toad's network thread take turns running Python (the GIL), so one process can use
  little more than one core whatever the machine has; and how long its threads waited for a CPU
  (``schedstat``), with what the rest of the machine used (``/proc/stat``), since the cores are shared;
- its RSS at the end of the window, and how much it grew during it (and during its second half);
- ``state`` messages received per player per second (20 is every tick), and the gap between a
  player's consecutive ``state`` messages (p50/p99/max; 50 ms is ideal). The gaps across a round's
  end and the next start are left out and reported apart, as restarts;
- the tick-to-arrival spread: for each tick, from the first player to the last one receiving its
  ``state`` (the time the server takes to send one tick to every room, plus this process's reading);
- ``state`` messages lost (a tick number skipped within a round), ``error`` messages received (the
  server must send none), Close frames and dropped connections;
- bandwidth: WebSocket bytes (frame headers included, TCP/IP not) the server sent per player per
  second; a ``state`` lists every player of the room, so it grows with the room (8 here);
- this process's own CPU share and how late its input timers fired, to show it was not the limit.

The report ends with the largest player count kept on time (at least 19.8 ``state``/s per player, gap
p99 at most 75 ms) and the server's CPU per player there.

Writes ``benchmarks/results/lobby.json`` (every round's figures) and ``lobby.md`` (the table of
medians) unless ``--out`` names a JSON file. ``--rounds`` defaults to 1: one fresh server per player
count is steady enough for a capacity question; pass more for medians.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEMPLATE = REPO / "templates" / "lobby-server"
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import rawpeers  # noqa: E402
import run  # noqa: E402  (machine(), versions(), fmt())
from rawpeers import CLOSED, OPEN  # noqa: E402

DEFAULT_PLAYERS = [16, 64, 256, 384, 512, 768]
ROOM = 8  # players per room: the template's default room capacity
SLOTS = 10  # each tick's inputs go out in this many slots, spread over the tick
CHAT_EVERY = (4.0, 6.0)  # seconds between a player's chat lines: about 0.2 Hz
HANDSHAKES_AT_ONCE = 128  # connections opening at a time
STATE_PREFIX = b'{"type":"state","tick":'  # protocol.encode() is compact, keys in the order the lobby builds them


# -- the server ---------------------------------------------------------------------------


def bake(output_dir: Path) -> tuple[Path, str]:
    """Render the lobby-server template with its default answers; its folder and package name."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), default_config=True))
    [main] = [p for p in project.glob("*/__main__.py") if p.parent.name != "tests"]
    return project, main.parent.name


def listening_port(pid: int) -> int | None:
    """The TCP port a process listens on, from its descriptors and ``/proc/PID/net/tcp``; None if none yet."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds each thread of a process has used so far (``/proc/PID/task/TID/stat``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def run_queue_wait(pid: int | str) -> float:
    """Seconds a process's threads have spent runnable but waiting for a CPU (``/proc/PID/task/TID/schedstat``)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (all cores) and stolen by its hypervisor (``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / ticks, fields[7] / ticks


class LobbyServer:
    """The baked server in its own process; its port once it listens, its log lines once stopped."""

    def __init__(self, project: Path, package: str) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")
        path = [str(project), str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        args = ["--host", "127.0.0.1", "--port", "0", "--log-level", "WARNING"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", package, *args],
            cwd=project,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20.0
        port = None
        while port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                lines = self.stop()
                raise RuntimeError(f"the lobby server did not start: {lines[-5:]}")
            time.sleep(0.02)
            port = listening_port(self.pid)
        self.port = port

    def stop(self) -> list[str]:
        """SIGTERM (it closes every connection with 1001), then what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.seek(0)
        lines = [line.rstrip("\n") for line in self.log if line.strip()]
        self.log.close()
        return lines


# -- the players --------------------------------------------------------------------------


class Group:
    """Eight players meant for one room; ``bots[0]`` creates it and hosts."""

    __slots__ = ("bots", "code", "room_id", "start_sent", "waiting")

    def __init__(self) -> None:
        self.bots: list[Bot] = []
        self.room_id: str | None = None
        self.code: str | None = None
        self.waiting: list[Bot] = []  # welcomed before the room existed
        self.start_sent = False


class Bot(rawpeers.RawPeer):
    """One simulated player: its socket, buffers (see rawpeers.RawPeer), and where it is in the lobby and the game."""

    __slots__ = (
        "frag",
        "group",
        "idx",
        "in_room",
        "last_state",
        "last_tick",
        "next_chat",
        "playing",
        "restarting",
        "seat",
        "seq",
        "started",
    )

    def __init__(self, idx: int, group: Group, seat: int) -> None:
        super().__init__()
        self.idx = idx
        self.group = group
        self.seat = seat
        self.frag: bytearray | None = None
        self.in_room = False
        self.playing = False
        self.started = False  # has seen a first start
        self.restarting = False  # a round ended: the next state's gap is a restart gap
        self.seq = 0
        self.last_tick = 0
        self.last_state = 0.0
        self.next_chat = 0.0


def text_frame(payload: bytes) -> bytes:
    return loadgen.masked_frame(0x1, payload)


def message(**fields: Any) -> bytes:
    return text_frame(json.dumps(fields, separators=(",", ":")).encode())


class Players(rawpeers.RawPeers[Bot]):
    """``count`` players on one selector, playing the lobby server's game in rooms of 8."""

    def __init__(self, port: int, count: int, seed: int = 20) -> None:
        super().__init__(port)
        self.count = count
        self.rng = random.Random(seed)
        self.groups = [Group() for _ in range((count + ROOM - 1) // ROOM)]
        self.bots: list[Bot] = []
        for i in range(count):
            group = self.groups[i // ROOM]
            bot = Bot(i, group, i % ROOM)
            group.bots.append(bot)
            self.bots.append(bot)
        self.slots = [self.bots[k::SLOTS] for k in range(SLOTS)]
        self.to_connect = collections.deque(self.bots)
        self.opening = 0
        self.started = 0  # players that have seen their first start
        self.tick_rate = 20
        self.next_slot = 0.0
        self.slot = 0
        self.measuring = False
        self.now = 0.0  # when the data being parsed arrived
        # Over the whole run.
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.error_samples: list[str] = []
        self.closes: collections.Counter[str] = collections.Counter()
        self.problems: collections.Counter[str] = collections.Counter()
        self.rounds_started = 0
        self.rounds_ended = 0
        # In the window only.
        self.bytes_in = 0
        self.bytes_out = 0
        self.states = 0
        self.state_bytes = 0
        self.chats_in = 0
        self.gaps: list[float] = []
        self.restart_gaps: list[float] = []
        self.lost = 0
        self.disordered = 0
        self.tick_first: dict[int, float] = {}
        self.tick_last: dict[int, float] = {}
        self.lags: list[float] = []
        self.window_restarts = 0

    # -- the loop -----------------------------------------------------------------

    def serve(self, until: float, done: Callable[[], bool] = lambda: False) -> None:
        clock = time.monotonic
        while True:
            now = clock()
            if now >= self.next_slot:
                self.fire_slots(now)
            if done() or now >= until:
                return
            if self.to_connect and self.opening < HANDSHAKES_AT_ONCE:
                self.connect_more()
            self.poll(max(0.0, min(self.next_slot, until) - clock()))

    def fire_slots(self, now: float) -> None:
        """Send the inputs (and chat lines) of every slot that is due."""
        period = 1.0 / self.tick_rate / SLOTS
        if not self.next_slot:
            self.next_slot = now
        if now - self.next_slot > 0.25:  # this process stalled: carry on from now rather than burst
            self.problems["input timer resynced"] += 1
            self.next_slot = now
        while self.next_slot <= now:
            if self.measuring:
                self.lags.append(now - self.next_slot)
            for bot in self.slots[self.slot]:
                if bot.playing:
                    bot.seq += 1
                    dx = 1 if bot.seq % 2 else -1
                    self.send(bot, text_frame(b'{"type":"input","seq":%d,"input":{"dx":%d,"dy":0}}' % (bot.seq, dx)))
                if bot.in_room and now >= bot.next_chat:
                    bot.next_chat = now + self.rng.uniform(*CHAT_EVERY)
                    self.send(bot, message(type="chat", text=f"gl hf from {bot.idx}"))
            self.slot = (self.slot + 1) % SLOTS
            self.next_slot += period

    def connect_more(self) -> None:
        while self.to_connect and self.opening < HANDSHAKES_AT_ONCE:
            if self.connect(self.to_connect.popleft()):
                self.opening += 1

    def send(self, bot: Bot, data: bytes) -> None:
        """Send unless the bot is closed, counting the bytes while measuring (see rawpeers.RawPeers.send)."""
        if bot.sock is None or bot.state == CLOSED:
            return
        if self.measuring:
            self.bytes_out += len(data)
        super().send(bot, data)

    def drop(self, bot: Bot, why: str) -> None:
        """Count ``why`` as a problem, take the bot out of the game and close its socket."""
        self.problems[why] += 1
        bot.playing = bot.in_room = False
        self.release(bot)

    # -- the socket's hooks (see rawpeers.RawPeers) ---------------------------------

    def on_broken(self, bot: Bot, where: str, exc: OSError) -> None:
        self.drop(bot, f"{where}: {exc.strerror}")

    def on_eof(self, bot: Bot) -> None:
        self.drop(bot, "the server ended the connection")

    def on_data(self, bot: Bot, data: bytes) -> None:
        self.now = time.monotonic()
        if self.measuring:
            self.bytes_in += len(data)

    def on_open(self, bot: Bot) -> None:
        bot.state = OPEN
        self.opening -= 1
        self.send(bot, message(type="hello", name=f"bot{bot.idx}"))

    def on_masked_frame(self, bot: Bot) -> None:
        self.problems["a masked frame from the server"] += 1

    def on_frame(self, bot: Bot, b0: int, payload: bytes) -> None:
        """Reassemble fragmented text for ``on_text``; answer Close (and drop the bot) and Ping."""
        now = self.now
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode == 0x1 or opcode == 0x0:
            if opcode == 0x0:
                if bot.frag is None:
                    self.problems["a continuation without a start"] += 1
                    return
                bot.frag += payload
            elif not fin:
                bot.frag = bytearray(payload)
            if not fin:
                self.problems["fragmented messages"] += opcode == 0x1
                return
            if opcode == 0x0:
                assert bot.frag is not None
                payload, bot.frag = bytes(bot.frag), None
            self.on_text(bot, payload, now)
        elif opcode == 0x8:
            code = rawpeers.close_code(payload)
            self.closes[f"{code} {payload[2:].decode(errors='replace')}".strip()] += 1
            self.send(bot, rawpeers.close_reply(payload))
            self.drop(bot, "closed by the server")
        elif opcode == 0x9:
            self.send(bot, rawpeers.pong(payload))
        elif opcode != 0xA:
            self.problems[f"opcode {opcode}"] += 1

    # -- the protocol ---------------------------------------------------------------

    def on_text(self, bot: Bot, payload: bytes, now: float) -> None:
        if payload.startswith(STATE_PREFIX):
            start = len(STATE_PREFIX)
            self.on_state(bot, int(payload[start : payload.index(b",", start)]), len(payload), now)
            return
        msg = json.loads(payload)
        kind = msg.get("type")
        self.counts[str(kind)] += 1
        group = bot.group
        if kind == "welcome":
            self.tick_rate = int(msg["tick_rate"])
            if bot.seat == 0:
                self.send(bot, message(type="create", name=f"room of bot{bot.idx}"))
                self.send(bot, message(type="ready", ready=True))
            elif group.room_id is None:
                group.waiting.append(bot)
            else:
                self.join(bot)
        elif kind == "room":
            room = msg["room"]
            if not bot.in_room:
                bot.in_room = True
                bot.next_chat = now + self.rng.uniform(0.0, CHAT_EVERY[1])
            if bot.seat != 0:
                return
            if group.room_id is None:
                group.room_id, group.code = room["id"], room["code"]
                for waiting in group.waiting:
                    self.join(waiting)
                group.waiting.clear()
            players = room["players"]
            if (
                room["state"] == "waiting"
                and not group.start_sent
                and len(players) == len(group.bots)
                and all(p["ready"] and p["connected"] for p in players)
            ):
                group.start_sent = True
                self.send(bot, message(type="start"))
        elif kind == "start":
            bot.playing = True
            if bot.seat == 0:
                group.start_sent = False
                self.rounds_started += 1
                self.window_restarts += self.measuring
            if not bot.started:
                bot.started = True
                self.started += 1
            elif bot.last_state:
                bot.restarting = True
        elif kind == "end":
            bot.playing = False
            self.rounds_ended += bot.seat == 0
            self.send(bot, message(type="ready", ready=True))
        elif kind == "chat":
            self.chats_in += self.measuring
        elif kind == "error":
            code = str(msg.get("code"))
            self.errors[code] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"bot{bot.idx}: {code} about {msg.get('about')}: {msg.get('message')}")

    def join(self, bot: Bot) -> None:
        group = bot.group
        if bot.seat % 2:
            self.send(bot, message(type="join", code=(group.code or "").lower()))
        else:
            self.send(bot, message(type="join", room=group.room_id))
        self.send(bot, message(type="ready", ready=True))

    def on_state(self, bot: Bot, tick: int, size: int, now: float) -> None:
        if bot.restarting:
            bot.restarting = False
            if self.measuring:
                self.restart_gaps.append(now - bot.last_state)
        elif bot.last_tick and self.measuring:
            self.gaps.append(now - bot.last_state)
            if tick > bot.last_tick + 1:
                self.lost += tick - bot.last_tick - 1
            elif tick <= bot.last_tick:
                self.disordered += 1
        bot.last_tick = tick
        bot.last_state = now
        if self.measuring:
            self.states += 1
            self.state_bytes += size
            if tick not in self.tick_first:
                self.tick_first[tick] = now
            self.tick_last[tick] = now


# -- one measurement ----------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return loadgen.percentile(values, q) * 1e3


def measure(project: Path, package: str, count: int, seconds: float, warmup: float) -> dict[str, Any]:
    """One fresh server, ``count`` players: set up, warm up, then ``seconds`` of steady play measured."""
    server = LobbyServer(project, package)
    players = Players(server.port, count)
    try:
        t0 = time.monotonic()
        players.serve(t0 + 60.0 + count * 0.05, done=lambda: players.started == count)
        setup = time.monotonic() - t0
        if players.started < count:
            raise RuntimeError(
                f"only {players.started} of {count} players were playing after {setup:.0f} s "
                f"(errors {dict(players.errors)}, problems {dict(players.problems)})"
            )
        players.serve(time.monotonic() + warmup)
        rss0 = loadgen.proc_rss(server.pid)
        threads0 = thread_cpu(server.pid)
        server0 = loadgen.proc_cpu(server.pid)
        waits0 = run_queue_wait(server.pid), run_queue_wait("self")
        machine0 = machine_cpu()
        cpu0, wall0 = time.process_time(), time.monotonic()
        players.measuring = True
        players.serve(wall0 + seconds / 2)
        rss_half = loadgen.proc_rss(server.pid)
        players.serve(wall0 + seconds)
        players.measuring = False
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        server_cpu = loadgen.proc_cpu(server.pid) - server0
        machine1 = machine_cpu()
        waits1 = run_queue_wait(server.pid), run_queue_wait("self")
        threads1 = thread_cpu(server.pid)
        rss1 = loadgen.proc_rss(server.pid)
    finally:
        players.close()
        log = server.stop()
    busiest = max((threads1[t] - threads0.get(t, 0.0) for t in threads1), default=float("nan"))
    ticks = sorted(players.tick_first)[1:-1]  # the first and last may be cut by the window's edges
    spreads = [players.tick_last[t] - players.tick_first[t] for t in ticks]
    intervals = [players.tick_first[b] - players.tick_first[a] for a, b in itertools.pairwise(ticks) if b == a + 1]
    errors = sum(players.errors.values())
    return {
        "players": count,
        "rooms": len(players.groups),
        "seconds": wall,
        "setup_s": setup,
        "server_cpu": server_cpu / wall,
        "server_busiest_thread": busiest / wall,
        "server_threads": len(threads1),
        "server_cpu_ms_per_player_s": server_cpu / wall / count * 1e3,
        "rss_mib": rss1 / 2**20,
        "rss_growth_mib": (rss1 - rss0) / 2**20,
        "rss_growth_2nd_half_mib": (rss1 - rss_half) / 2**20,
        "state_per_s": players.states / count / wall,
        "gap_p50_ms": pct(players.gaps, 0.5),
        "gap_p99_ms": pct(players.gaps, 0.99),
        "gap_max_ms": max(players.gaps, default=float("nan")) * 1e3,
        "spread_p50_ms": pct(spreads, 0.5),
        "spread_p99_ms": pct(spreads, 0.99),
        "spread_max_ms": max(spreads, default=float("nan")) * 1e3,
        "tick_interval_p99_ms": pct(intervals, 0.99),
        "tick_interval_max_ms": max(intervals, default=float("nan")) * 1e3,
        "lost": players.lost,
        "disordered": players.disordered,
        "errors": errors,
        "error_codes": dict(players.errors),
        "error_samples": players.error_samples,
        "closes": dict(players.closes),
        "problems": dict(players.problems),
        "server_bytes_per_s_per_player": players.bytes_in / count / wall,
        "state_bytes": players.state_bytes / players.states if players.states else float("nan"),
        "client_bytes_per_s_per_player": players.bytes_out / count / wall,
        "chats_in_per_s": players.chats_in / wall,
        "rounds_started": players.rounds_started,
        "rounds_ended": players.rounds_ended,
        "window_restarts": players.window_restarts,
        "restart_gaps": len(players.restart_gaps),
        "restart_gap_max_ms": max(players.restart_gaps, default=float("nan")) * 1e3,
        "loadgen_cpu": cpu / wall,
        "server_cpu_wait": (waits1[0] - waits0[0]) / wall,
        "loadgen_cpu_wait": (waits1[1] - waits0[1]) / wall,
        "machine_busy": (machine1[0] - machine0[0]) / wall,
        "machine_others": (machine1[0] - machine0[0] - server_cpu - cpu) / wall,
        "machine_steal": (machine1[1] - machine0[1]) / wall,
        "loadgen_lag_p99_ms": pct(players.lags, 0.99),
        "loadgen_lag_max_ms": max(players.lags, default=float("nan")) * 1e3,
        "server_log": log[:20],
        "server_log_lines": len(log),
    }


def run_all(counts: list[int], rounds: int, seconds: float, warmup: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="toad-lobby-bench-") as tmp:
        project, package = bake(Path(tmp))
        for round_no in range(rounds):
            for count in counts:
                try:
                    figures = measure(project, package, count, seconds, warmup)
                except Exception as exc:  # report and go on: a larger count may fail where a smaller did not
                    figures = {"players": count, "error": repr(exc)}
                record = {"round": round_no, **figures}
                records.append(record)
                print(json.dumps({k: v for k, v in record.items() if k not in ("server_log", "error_samples")}))
                sys.stdout.flush()
    return records


# -- the report -----------------------------------------------------------------------------


def medians(records: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if "error" not in record:
            grouped.setdefault(record["players"], []).append(record)
    result = {}
    for count, group in sorted(grouped.items()):
        fields = {k for r in group for k, v in r.items() if isinstance(v, (int, float)) and k != "round"}
        result[count] = {f: loadgen.median([r[f] for r in group if f in r]) for f in fields}
    return result


ON_TIME_RATE = 19.8  # state messages per player per second: every tick but an occasional late one
ON_TIME_GAP_MS = 75.0  # gap p99: one and a half ticks


def capacity(med: dict[int, dict[str, float]]) -> list[str]:
    """One sentence on how many players the server kept on time, and what a player costs it."""

    def on_time(m: dict[str, float]) -> bool:
        return m["state_per_s"] >= ON_TIME_RATE and m["gap_p99_ms"] <= ON_TIME_GAP_MS and not m["lost"]

    good = [c for c, m in med.items() if on_time(m)]
    late = [c for c, m in med.items() if not on_time(m)]
    if not good:
        return ["", f"Capacity: no count was on time ({ON_TIME_RATE:g} states/s, gap p99 {ON_TIME_GAP_MS:g} ms)."]
    best = med[max(good)]
    text = (
        f"Capacity: every tick on time (at least {ON_TIME_RATE:g} `state`/s per player, gap p99 at most "
        f"{ON_TIME_GAP_MS:g} ms) up to {max(good)} players, the process at {best['server_cpu']:.2f} cores "
        f"({best['server_cpu_ms_per_player_s']:.2f} ms of CPU per player per second)"
    )
    later = [c for c in late if c > max(good)]
    if later:
        m = med[min(later)]
        text += (
            f"; at {min(later)} it falls behind: {m['state_per_s']:.2f} `state`/s, gap p99 {m['gap_p99_ms']:.1f} ms, "
            f"the process at {m['server_cpu']:.2f} cores"
        )
    return ["", text + "."]


def table(records: list[dict[str, Any]], rounds: int, meta: dict[str, Any] | None = None) -> str:
    fmt = run.fmt
    meta = meta or {}
    # Missing figures (a JSON saved by an older version of this file) show as "-".
    med = {c: collections.defaultdict(lambda: float("nan"), m) for c, m in medians(records).items()}
    seconds = max((m["seconds"] for m in med.values()), default=0.0)
    lines = [
        f"The generated lobby server (templates/lobby-server, default answers: 20 ticks/s, rooms of {ROOM}), "
        f"one process; every player sends an input per tick and a chat line every ~5 s. "
        f"Medians of {rounds} round(s), {seconds:.0f} s of steady play each. "
        f"{meta.get('versions') or run.versions()}. {meta.get('machine') or run.machine()}.",
        "",
        "| players | server CPU (cores) | busiest thread | RSS MiB | state/s per player "
        "| gap p50 / p99 / max ms | tick spread p50 / p99 ms | lost | errors | server KB/s per player "
        "| state bytes | loadgen CPU | loadgen lag p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count, m in med.items():
        lines.append(
            f"| {count} | {fmt(m['server_cpu'])} | {fmt(m['server_busiest_thread'])} | {fmt(m['rss_mib'])} "
            f"| {fmt(m['state_per_s'])} | {fmt(m['gap_p50_ms'])} / {fmt(m['gap_p99_ms'])} / {fmt(m['gap_max_ms'])} "
            f"| {fmt(m['spread_p50_ms'])} / {fmt(m['spread_p99_ms'])} | {m['lost']:.0f} | {m['errors']:.0f} "
            f"| {fmt(m['server_bytes_per_s_per_player'] / 1e3)} | {fmt(m['state_bytes'])} "
            f"| {m['loadgen_cpu']:.0%} | {fmt(m['loadgen_lag_p99_ms'])} |"
        )
    lines += [
        "",
        "Server CPU: utime + stime of the whole process over the window, in cores; busiest thread: the same for "
        "its busiest thread (the threads take turns running Python, so little more than 1.0 core for the whole "
        "process is the ceiling). Gap: between "
        "a player's consecutive `state` messages (50 ms is every tick). Tick spread: from the first to the last "
        "player receiving one tick's `state`. Server KB/s: WebSocket bytes the server sent each player, frame "
        "headers included; state bytes: one `state` message's JSON (it lists the room's 8 players). Loadgen: this "
        "benchmark's own process (one core at most), and how late its input timers fired.",
    ]
    if med:
        lines.append("")
        for count, m in med.items():
            lines.append(
                f"- {count} players: set up in {m['setup_s']:.1f} s; server CPU {fmt(m['server_cpu_ms_per_player_s'])} "
                f"ms per player per second; RSS grew {m['rss_growth_mib']:+.1f} MiB during the window "
                f"({m['rss_growth_2nd_half_mib']:+.1f} in its second half); "
                f"tick interval (first arrival) p99 {fmt(m['tick_interval_p99_ms'])} ms, max "
                f"{fmt(m['tick_interval_max_ms'])} ms; {m['server_threads']:.0f} threads; clients sent "
                f"{fmt(m['client_bytes_per_s_per_player'] / 1e3)} KB/s each; {m['chats_in_per_s']:.0f} chat "
                f"deliveries/s; rounds restarted in the window: {m['window_restarts']:.0f}"
                + (f" (restart gap max {fmt(m['restart_gap_max_ms'])} ms)" if m["window_restarts"] else "")
                + f"; the server's threads waited for a CPU "
                f"{fmt(m['server_cpu_wait'])} s per s, the load generator {fmt(m['loadgen_cpu_wait'])} s per s; the "
                f"machine was busy {fmt(m['machine_busy'])} cores, {fmt(m['machine_others'])} of them other processes"
                + (f", {fmt(m['machine_steal'])} stolen by the hypervisor" if m["machine_steal"] >= 0.01 else "")
            )
    lines += capacity(med)
    odd = []
    for r in records:
        where = f"round {r['round']}, {r['players']} players"
        if "error" in r:
            odd.append(f"- {where}: the run failed: {r['error']}")
            continue
        for key in ("error_codes", "closes", "problems"):
            if r.get(key):
                odd.append(f"- {where}: {key.replace('_', ' ')} {r[key]}")
        if r.get("error_samples"):
            odd.append(f"- {where}: e.g. {r['error_samples'][:3]}")
        if r.get("server_log_lines"):
            odd.append(f"- {where}: the server logged {r['server_log_lines']} lines at WARNING+: {r['server_log'][:3]}")
        if r.get("lost") or r.get("disordered"):
            odd.append(f"- {where}: {r['lost']} states lost, {r['disordered']} out of order")
    lines += ["", "Anything odd: " + ("none (no errors, closes, lost states or server log lines)." if not odd else "")]
    lines += odd
    busy = [c for c, m in med.items() if m["loadgen_cpu"] >= 0.9 or m["loadgen_lag_p99_ms"] > 25]
    if busy:
        lines.append(
            f"\nWARNING: at {', '.join(map(str, busy))} players the load generator was busy (90% of a core) or late "
            "(its timers p99 over 25 ms late): its own delays may be in those figures, not only the server's."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", help="comma-separated player counts (default 16,64,256,384,512,768)")
    parser.add_argument("--seconds", type=float, default=None, help="steady seconds measured (default 20; 5 quick)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds played before the window (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, medians reported (default 1)")
    parser.add_argument("--quick", action="store_true", help="16 and 64 players for 5 s: a smoke run")
    parser.add_argument("--out", type=Path, help="write the JSON here (default benchmarks/results/lobby.json + .md)")
    parser.add_argument("--table", type=Path, help="only print the table of an earlier JSON")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved["records"], saved.get("rounds", 1), saved), end="")
        return
    counts = [int(c) for c in args.players.split(",")] if args.players else [16, 64] if args.quick else DEFAULT_PLAYERS
    seconds = args.seconds if args.seconds is not None else 5.0 if args.quick else 20.0
    warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 3.0
    # Each player is a descriptor here and one in the server (which inherits this limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < max(counts) + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    records = run_all(counts, args.rounds, seconds, warmup)
    meta = {"versions": run.versions(), "machine": run.machine(), "rounds": args.rounds, "seconds": seconds}
    text = table(records, args.rounds, meta)
    saved = json.dumps({**meta, "warmup": warmup, "records": records}, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(saved)
    else:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "lobby.json").write_text(saved)
        (HERE / "results" / "lobby.md").write_text(text)
    print()
    print(text, end="")


if __name__ == "__main__":
    main()

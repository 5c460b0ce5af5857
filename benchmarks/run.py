"""Run every benchmark workload against toad and its peers, interleaved, and report medians and ratios.

    python benchmarks/run.py                 # everything, 3 rounds (about 15 minutes)
    python benchmarks/run.py --quick         # shorter workloads, 1 round: a smoke run
    python benchmarks/run.py --only fanout   # one workload (names below), any rounds
    python benchmarks/run.py --rounds 5 --out benchmarks/results

Peers, measured in the same run: the ``websockets`` package (asyncio server
and client) and a raw TCP program in Python doing no WebSocket work at all
(the floor). Each server runs in its own process (``servers.py``); the load
generator (``loadgen.py``) is this process, with raw sockets and frames built
in advance, and reports its own CPU share so a reader can see it was not the
bottleneck. Each round runs every server once per workload, in a rotating
order, so a busy moment on the machine does not land on one server only.

Writes ``results.json`` (every round's figures) and ``results.md`` (the
table of medians with the versions and the machine) into ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402

SERVERS = ["toad", "toad-poll", "websockets", "raw"]
CLIENTS = ["toad", "toad-block", "toad-pygame", "websockets", "raw"]
WORKLOADS = ["roundtrip", "pipelined", "big", "handshake", "memory", "fanout", "fanout60", "client", "bridge"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One server of ``servers.py`` in its own process, ready when the context is entered."""

    def __init__(self, kind: str, role: str, rate: float = 30.0) -> None:
        self.port = free_port()
        self.args = [sys.executable, str(HERE / "servers.py"), kind, role, str(self.port), str(rate)]

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"server {self.args[2:]} did not start: {line!r}")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def ws(kind: str) -> bool:
    return kind != "raw"


# -- one measurement per (workload, server) -----------------------------------------


# The echo workloads: the load generator's function, and its size (quick, full).
ECHO_WORKLOADS: dict[str, tuple[Callable[..., dict[str, Any]], float, float]] = {
    "roundtrip": (loadgen.roundtrips, 5_000, 40_000),  # round trips
    "pipelined": (loadgen.pipelined, 50_000, 400_000),  # messages
    "big": (loadgen.big_echo, 50, 400),  # 1 MiB messages
    "handshake": (loadgen.handshakes, 2.0, 5.0),  # seconds
}


def run_echo(workload: str, kind: str, quick: bool) -> dict[str, Any]:
    fn, quick_size, size = ECHO_WORKLOADS[workload]
    with ServerProcess(kind, "echo") as server:
        return fn(server.port, ws(kind), type(size)(quick_size if quick else size))


def run_memory(kind: str, quick: bool) -> dict[str, Any]:
    count = 500 if quick else 2000
    with ServerProcess(kind, "hold") as server:
        warm = loadgen.open_idle(server.port, ws(kind), 20)  # imports and first-use allocations
        time.sleep(0.5)
        before = loadgen.proc_rss(server.pid)
        socks = loadgen.open_idle(server.port, ws(kind), count)
        time.sleep(1.0)
        after = loadgen.proc_rss(server.pid)
        for sock in socks + warm:
            sock.close()
    return {"kib_per_conn": (after - before) / count / 1024}


def _fanout(kind: str, quick: bool, clients: int, rate: float) -> dict[str, Any]:
    with ServerProcess(kind, "fanout", rate) as server:
        result = loadgen.fanout(server.port, ws(kind), clients, 3.0 if quick else 10.0, server.pid)
    result["clients"] = clients
    result["rate"] = rate
    return result


def run_client(kind: str, quick: bool) -> dict[str, Any]:
    count = 50_000 if quick else 200_000
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as listener:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "clients.py"), kind, str(port), str(count)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
        )
        sock, _ = listener.accept()
        with sock:
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            if kind != "raw":
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in request.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key")
                )
                sock.sendall(_accept_response(key))
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            frame = b"\x82\x40" + os.urandom(64)
            chunk = frame * 4096
            for _ in range(count // 4096):
                sock.sendall(chunk)
            sock.sendall(frame * (count % 4096))
            out, _ = proc.communicate(timeout=300)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _accept_response(key: bytes) -> bytes:
    import base64
    import hashlib

    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def fanout_cases(quick: bool) -> list[tuple[str, int, float]]:
    if quick:
        return [("fanout", 100, 30.0), ("fanout", 500, 30.0)]
    return [("fanout", 100, 30.0), ("fanout", 500, 30.0), ("fanout", 1000, 30.0), ("fanout60", 1000, 60.0)]


# -- the run ---------------------------------------------------------------------


def measure(only: set[str], rounds: int, quick: bool) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    plan: list[tuple[str, list[str], Callable[[str, bool], dict[str, Any]]]] = []
    for name in ECHO_WORKLOADS:
        if name in only:
            plan.append((name, SERVERS, functools.partial(run_echo, name)))
    if "memory" in only:
        plan.append(("memory", SERVERS, run_memory))
    for name, clients, rate in fanout_cases(quick):
        if name in only:
            case = f"{name}-{clients}"

            def fn(kind: str, quick: bool, clients: int = clients, rate: float = rate) -> dict[str, Any]:
                return _fanout(kind, quick, clients, rate)

            plan.append((case, ["toad-poll", "websockets", "raw"], fn))
    if "client" in only:
        plan.append(("client", CLIENTS, run_client))
    if "bridge" in only:
        # bridge.py runs its own interleaved rounds: once is enough.
        args = [sys.executable, str(HERE / "bridge.py"), "--json"] + (["--quick"] if quick else [])
        env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
        try:
            figures = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            figures = {"error": out.stderr[-500:]}
        records.append({"round": 0, "workload": "bridge", "kind": "toad-pygame", **figures})
        print(json.dumps(records[-1]), flush=True)
    for round_no in range(rounds):
        for workload, kinds, fn in plan:
            shift = round_no % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                try:
                    figures = fn(kind, quick)
                except Exception as exc:  # report and go on: one broken peer must not end the run
                    figures = {"error": repr(exc)}
                record = {"round": round_no, "workload": workload, "kind": kind, **figures}
                records.append(record)
                print(json.dumps(record), flush=True)
    return records


def medians(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault((record["workload"], record["kind"]), []).append(record)
    result = {}
    for key, group in grouped.items():
        fields = {k for r in group for k, v in r.items() if isinstance(v, (int, float)) and k != "round"}
        result[key] = {f: loadgen.median([r[f] for r in group if f in r]) for f in fields}
    return result


# The rows of the main table: workload, figure, label.
HEADLINE = [
    ("roundtrip", "per_s", "round trips/s"),
    ("pipelined", "per_s", "messages/s"),
    ("big", "mb_s", "MB/s"),
    ("handshake", "per_s", "handshakes/s"),
    ("memory", "kib_per_conn", "KiB per idle connection"),
    ("roundtrip", "p50_us", "round trip p50 µs"),
    ("roundtrip", "p99_us", "round trip p99 µs"),
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def versions() -> str:
    from importlib.metadata import version

    parts = [f"Python {platform.python_version()}"]
    for package in ("toad-ws", "websockets", "pygame-ce"):
        try:
            parts.append(f"{package} {version(package)}")
        except Exception:
            pass
    return ", ".join(parts)


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(records: list[dict[str, Any]], rounds: int) -> str:
    med = medians(records)
    lines = [f"Medians of {rounds} round(s). {versions()}. {machine()}."]
    if any((w, k) in med for w, _f, _l in HEADLINE for k in SERVERS):
        lines += [
            "",
            "| workload | toad | toad (poll) | websockets | raw TCP | toad / websockets | toad / raw |",
            "|---|---|---|---|---|---|---|",
        ]
    for workload, field, label in HEADLINE:
        row = {k: med.get((workload, k), {}).get(field, float("nan")) for k in SERVERS}
        if all(v != v for v in row.values()):
            continue
        lines.append(
            f"| {workload}: {label} | {fmt(row['toad'])} | {fmt(row['toad-poll'])} | {fmt(row['websockets'])} "
            f"| {fmt(row['raw'])} | {fmt(row['toad'] / row['websockets'])}x | {fmt(row['toad'] / row['raw'])}x |"
        )
    fan = sorted(
        {w for (w, _k) in med if w.startswith("fanout")},
        key=lambda w: (w.startswith("fanout60"), int(w.rsplit("-", 1)[1])),
    )
    if fan:
        lines += [
            "",
            "Fan-out: the server broadcasts a 100-byte message to every client at the tick rate "
            "(toad: `Server.broadcast` from a `block=False` game loop).",
            "",
            "| case | server | delivered/s | lost | p50 ms | p99 ms | max ms | server CPU µs/msg "
            "| server CPU (cores) | vs raw CPU/msg |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for workload in fan:
            raw_cost = med.get((workload, "raw"), {}).get("server_cpu_us_per_msg", float("nan"))
            for kind in ("toad-poll", "websockets", "raw"):
                m = med.get((workload, kind))
                if not m:
                    continue
                rate = "60 Hz" if workload.startswith("fanout60") else "30 Hz"
                lines.append(
                    f"| {m.get('clients', 0):.0f} clients, {rate} | {kind} | {fmt(m['delivered_per_s'])} "
                    f"| {m['lost']:.0f} | {fmt(m['p50_ms'])} | {fmt(m['p99_ms'])} | {fmt(m['max_ms'])} "
                    f"| {fmt(m['server_cpu_us_per_msg'])} | {fmt(m['server_cpu'])} "
                    f"| {fmt(m['server_cpu_us_per_msg'] / raw_cost)}x |"
                )
    client = {k: med.get(("client", k), {}) for k in CLIENTS}
    if any(client.values()):
        lines += [
            "",
            "Receiving: one client takes a flood of 64-byte binary messages from a raw sender.",
            "",
            "| client | messages/s | CPU s | vs websockets |",
            "|---|---|---|---|",
        ]
        peer = client["websockets"].get("per_s", float("nan"))
        for kind, m in client.items():
            if m:
                lines.append(f"| {kind} | {fmt(m['per_s'])} | {fmt(m['cpu_s'])} | {fmt(m['per_s'] / peer)}x |")
    bridge = med.get(("bridge", "toad-pygame"))
    if bridge and "pg_cost_us_per_message" in bridge:
        lines += [
            "",
            "The pygame bridge (`benchmarks/bridge.py`): a toad client's messages handed to the game.",
            "",
            "| game reads with | messages/s, all waiting | messages/s, streaming | latency p50 µs | latency p99 µs |",
            "|---|---|---|---|---|",
        ]
        for mode, name in (("poll", "`conn.poll()`"), ("messages", "`conn.messages()`"), ("pg", "`toad.pg`")):
            lines.append(
                f"| {name} | {fmt(bridge.get(f'{mode}_drain_per_s', float('nan')))} "
                f"| {fmt(bridge.get(f'{mode}_stream_per_s', float('nan')))} "
                f"| {fmt(bridge.get(f'{mode}_latency_median_us', float('nan')))} "
                f"| {fmt(bridge.get(f'{mode}_latency_p99_us', float('nan')))} |"
            )
        added = (bridge["pg_added_latency_median_us"], bridge["pg_added_latency_p99_us"])
        latency = (
            f"adds {added[0]:.0f} µs (p50) / {added[1]:.0f} µs (p99) of latency"
            if min(added) > 0
            else f"adds no latency this run could measure ({added[0]:+.0f} µs p50, {added[1]:+.0f} µs p99: noise)"
        )
        cost = bridge["pg_cost_us_per_message"]
        lines.append(f"\nThe bridge costs {cost:.2f} µs per message more than `poll()` and {latency}.")
    load: dict[str, float] = {}
    for (workload, kind), m in med.items():
        share = m.get("loadgen_cpu", float("nan"))
        if kind != "raw" and share == share:
            load[workload] = max(load.get(workload, 0.0), share)
    if load:
        shares = ", ".join(f"{w} {v:.0%}" for w, v in sorted(load.items()))
        busy = [w for w, v in load.items() if v >= 0.95]
        verdict = (
            "Under 95% everywhere, so the servers, not the load generator, set these figures"
            if not busy
            else f"At 95% or more in {', '.join(sorted(busy))}: there the load generator may be the limit"
        )
        lines += [
            "",
            f"Load generator CPU (median share of one core, the highest against a WebSocket server): {shares}. "
            f"{verdict}; the raw TCP floor's pipelined and handshake figures are the load generator's own limit.",
        ]
    errors = [r for r in records if "error" in r]
    for r in errors:
        lines.append(f"- error in round {r['round']}, {r['workload']} against {r['kind']}: {r['error']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter workloads and one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, 1 with --quick)")
    parser.add_argument("--only", action="append", choices=WORKLOADS, help="run only this workload (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for results.json and results.md")
    parser.add_argument("--table", type=Path, help="only print the table of an earlier results.json")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved["records"], 1 + max(r["round"] for r in saved["records"])), end="")
        return
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(args.only or WORKLOADS)
    records = measure(only, rounds, args.quick)
    text = table(records, rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"versions": versions(), "machine": machine(), "records": records}, indent=1)
    )
    (args.out / "results.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

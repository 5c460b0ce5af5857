"""Run the Autobahn TestSuite cases (via kosoku) against toad, both sides, and print a table.

    python benchmarks/autobahn.py                    # categories 1-7, 9, 10, server and client
    python benchmarks/autobahn.py --side server 9    # only category 9, only the server side
    python benchmarks/autobahn.py --report reports   # also write kosoku's HTML/JSON reports

Categories 12 and 13 (permessage-deflate) are out: toad offers no extension.
Exits with status 1 if any case failed, after listing the failures. The same
cases run in CI as tests/test_autobahn.py.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import threading
import time
from typing import Any

import kosoku

import toad

DEFAULT_CATEGORIES = ["1", "2", "3", "4", "5", "6", "7", "9", "10"]
BIG = 64 << 20  # room to echo category 9's 16 MiB messages in one go
AGENT = "toad"
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def _passed(result: Any) -> bool:
    return result.behavior.value in PASSING and result.behavior_close.value in PASSING


def _collect(run: Any) -> list[Any]:
    try:
        return asyncio.run(run)
    except kosoku.FailureError as failure:
        return list(failure.results)


def run_server_side(category: str) -> list[Any]:
    """kosoku's fuzzing client against an echoing toad.Server."""
    server = toad.Server(max_message_size=None, ping_interval=None, max_write_buffer=BIG)
    server.onmessage(lambda client, message: client.send(message))
    thread = threading.Thread(target=server.start, kwargs={"host": "127.0.0.1", "port": 0, "block": True}, daemon=True)
    thread.start()
    while not server.running:
        time.sleep(0.01)
    try:
        url = f"ws://127.0.0.1:{server.port}"
        return _collect(kosoku.run_fuzzingclient(url, [f"{category}.*"], None, concurrency=1))
    finally:
        server.stop()
        thread.join(10)


def _drive(port: int) -> None:
    base = f"ws://127.0.0.1:{port}"
    counts: list[str] = []
    counter = toad.Connection(ping_interval=None)
    counter.onmessage(counts.append)
    counter.open(f"{base}/getCaseCount", block=True)
    for case in range(1, int(counts[0]) + 1):
        conn = toad.Connection(max_message_size=None, ping_interval=None, max_write_buffer=BIG)
        conn.onmessage(lambda message, conn=conn: conn.send(message))
        try:
            conn.open(f"{base}/runCase?case={case}&agent={AGENT}", block=True)
        except toad.ConnectionFailed as exc:
            print(f"case number {case}: cannot connect: {exc}", file=sys.stderr)
    toad.Connection(ping_interval=None).open(f"{base}/updateReports?agent={AGENT}", block=True)


async def _fuzzingserver(category: str) -> list[Any]:
    async with kosoku.run_fuzzingserver([f"{category}.*"], None, host="127.0.0.1", port=0) as fuzzer:
        await asyncio.to_thread(_drive, fuzzer.port)
        return await fuzzer.get_result()


def run_client_side(category: str) -> list[Any]:
    """toad.Connection clients driving kosoku's fuzzing server."""
    return _collect(_fuzzingserver(category))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("categories", nargs="*", default=DEFAULT_CATEGORIES, help="Autobahn categories to run")
    parser.add_argument("--side", choices=["server", "client", "both"], default="both")
    parser.add_argument("--report", metavar="DIR", help="write kosoku's reports to DIR/servers and DIR/clients")
    args = parser.parse_args()

    sides = [("server", run_server_side), ("client", run_client_side)]
    if args.side != "both":
        sides = [s for s in sides if s[0] == args.side]
    rows = []
    failures = []
    everything: dict[str, list[Any]] = collections.defaultdict(list)
    for side, run in sides:
        for category in args.categories:
            start = time.monotonic()
            results = run(category)
            elapsed = time.monotonic() - start
            everything[side].extend(results)
            counts = collections.Counter(r.behavior.value for r in results)
            bad = [r for r in results if not _passed(r)]
            failures.extend((side, r) for r in bad)
            rows.append(
                (
                    side,
                    category,
                    len(results),
                    counts["OK"],
                    counts["NON-STRICT"],
                    counts["INFORMATIONAL"],
                    len(bad),
                    elapsed,
                )
            )
            print(
                f"{side} {category}: {len(results) - len(bad)}/{len(results)} passed in {elapsed:.1f}s", file=sys.stderr
            )

    header = ("side", "category", "cases", "OK", "NON-STRICT", "INFO", "FAILED", "seconds")
    print()
    print("{:<8}{:>9}{:>7}{:>6}{:>12}{:>6}{:>8}{:>9}".format(*header))
    for side, category, n, ok, non_strict, info, failed, elapsed in rows:
        print(f"{side:<8}{category:>9}{n:>7}{ok:>6}{non_strict:>12}{info:>6}{failed:>8}{elapsed:>9.1f}")
    total = sum(row[-1] for row in rows)
    print(f"{'total':<8}{'':>9}{sum(r[2] for r in rows):>7}{'':>32}{len(failures):>8}{total:>9.1f}")

    for side, r in failures:
        print(f"\n{side} side, case {r.case_id}: behavior={r.behavior.value} close={r.behavior_close.value}")
        print(f"  {r.description.strip()}")
        print(f"  result: {r.result}")
        print(f"  close result: {r.result_close} (toad sent {r.remote_close_code} {r.remote_close_reason!r})")

    if args.report:
        from kosoku._report import write_reports  # what the kosoku command line uses

        for side, results in everything.items():
            write_reports(results, f"{args.report}/{'servers' if side == 'server' else 'clients'}")
        print(f"\nreports written to {args.report}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

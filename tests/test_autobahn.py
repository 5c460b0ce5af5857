"""RFC 6455 conformance: the Autobahn TestSuite cases, run by kosoku, against toad.

Both sides, over real sockets on 127.0.0.1:

- server side: a ``toad.Server`` that echoes every message back as the same
  type, driven by kosoku's fuzzing client;
- client side: ``toad.Connection`` clients driving kosoku's fuzzing server the
  Autobahn way (``/getCaseCount``, one echoing connection per
  ``/runCase?case=N&agent=toad``, then ``/updateReports``).

Categories 1-7, 9 and 10 run in full (12 and 13 are compression, which toad
does not offer). Every case must pass: OK, NON-STRICT or INFORMATIONAL for
both the message exchange and the closing handshake. The whole run takes
about 30 seconds; ``benchmarks/autobahn.py`` runs the same cases by hand and
prints a table with the timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import kosoku
import pytest

import toad

# Category 9 echoes messages of up to 16 MiB: the peers' write buffers must
# hold one whole echo, or toad drops the peer as a slow reader.
BIG = 64 << 20

CATEGORIES = ["1", "2", "3", "4", "5", "6", "7", pytest.param("9", marks=pytest.mark.timeout(300)), "10"]

# How many cases kosoku has in each category: a run that silently skipped
# cases must not pass.
CASE_COUNTS = {"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54, "10": 1}

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def _describe(result: Any) -> str:
    return "\n".join(
        [
            f"case {result.case_id}: behavior={result.behavior.value} close={result.behavior_close.value}",
            f"  description: {result.description.strip()}",
            f"  expectation: {result.expectation.strip()}",
            f"  result: {result.result}",
            f"  close result: {result.result_close}",
            f"  close codes: kosoku sent {result.local_close_code} {result.local_close_reason!r}, "
            f"toad sent {result.remote_close_code} {result.remote_close_reason!r}",
            f"  clean: {result.was_clean} ({result.was_not_clean_reason})",
            f"  expected: {_short(result.expected)}",
            f"  received: {_short(result.received)}",
        ]
    )


def _check(results: list[Any], category: str, errors: Sequence[str] = ()) -> None:
    failed = [r for r in results if not (r.behavior.value in PASSING and r.behavior_close.value in PASSING)]
    report = [_describe(r) for r in failed]
    report.extend(errors)
    ids = sorted(r.case_id for r in results)
    if len(results) != CASE_COUNTS[category]:
        report.append(f"expected {CASE_COUNTS[category]} cases in category {category}, ran {len(results)}: {ids}")
    if any(case_id.split(".")[0] != category for case_id in ids):
        report.append(f"cases from outside category {category} ran: {ids}")
    if report:
        pytest.fail(
            f"{len(failed)} of {len(results)} Autobahn cases failed in category {category}:\n\n" + "\n\n".join(report)
        )


def _results(run: Any) -> list[Any]:
    # kosoku raises FailureError when a case fails; it carries every result.
    try:
        return asyncio.run(run)
    except kosoku.FailureError as failure:
        return list(failure.results)


# -- toad as the server ------------------------------------------------------


@contextlib.contextmanager
def _serving(server: toad.Server) -> Iterator[toad.Server]:
    """Run ``server`` with block=True on a thread: callbacks run there, as events arrive."""
    thread = threading.Thread(target=server.start, kwargs={"host": "127.0.0.1", "port": 0}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.running:
            break
        thread.join(0.01)
    assert server.running, "the server did not start"
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)
        assert not thread.is_alive(), "the server's loop is stuck"


@pytest.fixture
def echo_server() -> Iterator[toad.Server]:
    server = toad.Server(max_message_size=None, ping_interval=None, max_write_buffer=BIG)

    @server.onmessage
    def echo(client: toad.Client, message: str | bytes) -> None:
        client.send(message)  # a Text goes back as text, a Binary as binary

    with _serving(server):
        yield server


@pytest.mark.parametrize("category", CATEGORIES)
def test_server_conformance(echo_server: toad.Server, category: str) -> None:
    url = f"ws://127.0.0.1:{echo_server.port}"
    results = _results(kosoku.run_fuzzingclient(url, [f"{category}.*"], None, concurrency=1))
    _check(results, category)


# -- toad as the client ------------------------------------------------------

AGENT = "toad"


def _drive(port: int) -> list[str]:
    """Run every case the fuzzing server offers with echoing toad Connections; returns errors."""
    base = f"ws://127.0.0.1:{port}"
    counts: list[str] = []
    counter = toad.Connection(ping_interval=None)
    counter.onmessage(counts.append)
    counter.open(f"{base}/getCaseCount", block=True)
    assert len(counts) == 1, f"/getCaseCount answered {counts!r}"
    errors = []
    for case in range(1, int(counts[0]) + 1):
        conn = toad.Connection(max_message_size=None, ping_interval=None, max_write_buffer=BIG)

        @conn.onmessage
        def echo(message: str | bytes, conn: toad.Connection = conn) -> None:
            conn.send(message)

        try:
            conn.open(f"{base}/runCase?case={case}&agent={AGENT}", block=True)
        except toad.ConnectionFailed as exc:
            errors.append(f"case number {case}: cannot connect: {exc}")
    reporter = toad.Connection(ping_interval=None)
    reporter.open(f"{base}/updateReports?agent={AGENT}", block=True)
    return errors


async def _run_fuzzingserver(category: str) -> tuple[list[Any], list[str]]:
    async with kosoku.run_fuzzingserver([f"{category}.*"], None, host="127.0.0.1", port=0) as fuzzer:
        # toad's blocking calls run on a worker thread while kosoku serves on this loop.
        errors = await asyncio.to_thread(_drive, fuzzer.port)
        try:
            return await fuzzer.get_result(), errors
        except kosoku.FailureError as failure:
            return list(failure.results), errors


@pytest.mark.parametrize("category", CATEGORIES)
def test_client_conformance(category: str) -> None:
    results, errors = asyncio.run(_run_fuzzingserver(category))
    assert all(r.agent == AGENT for r in results)
    _check(results, category, errors)


# -- a regression the category 9 echoes found ----------------------------------


def test_overflow_from_blocking_callback_drops_the_peer() -> None:
    """A send from a block=True callback that overflows the write buffer drops the peer.

    It used to deadlock the server's loop: the drop ran at once, on the loop's
    thread, and took the channel's lock that the send still held.
    """
    server = toad.Server(max_message_size=None, ping_interval=None, max_write_buffer=1 << 20)
    closed = threading.Event()
    # The first message is queued whole; the second finds the peer 1 MiB behind.
    server.onmessage(lambda client, message: [client.send(b"x" * (16 << 20)) for _ in range(2)])
    server.onclose(lambda client: closed.set())
    with _serving(server), socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(b"\x81\x82\x00\x00\x00\x00go")  # a masked text frame "go" (key 0)
        # Never read: 32 MiB of answers cannot fit in the buffers.
        assert closed.wait(10), "the server did not drop a peer that overflowed its write buffer"

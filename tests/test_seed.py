"""Every usage example of the seed runs, as written, each in its own process.

The examples in tests/seed_examples/ are the seed's text; only the port 8001
is swapped for a free one, so the tests can run anywhere.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import toad

EXAMPLES = Path(__file__).parent / "seed_examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(name: str, port: int, tmp_path: Path) -> subprocess.Popen[str]:
    source = (EXAMPLES / name).read_text().replace("8001", str(port))
    script = tmp_path / name
    script.write_text(source)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("localhost", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


@pytest.fixture
def server_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = launch(request.param, port, tmp_path)
    try:
        wait_listening(port, proc)
        yield proc, port
    finally:
        proc.kill()
        proc.communicate()


def run_client(name: str, port: int, tmp_path: Path) -> str:
    proc = launch(name, port, tmp_path)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{name} did not finish: {out!r} {err!r}") from None
    assert proc.returncode == 0, err
    return out


@pytest.mark.parametrize("server_process", ["server_async.py", "server_sync.py"], indirect=True)
@pytest.mark.parametrize("client", ["client_async.py", "client_sync.py"])
def test_seed_client_talks_to_seed_server(
    server_process: tuple[subprocess.Popen[str], int], client: str, tmp_path: Path
) -> None:
    # The client answers "blue", the server closes it, the client screams.
    _, port = server_process
    assert run_client(client, port, tmp_path).strip() == "Aaaaaah!"


@pytest.mark.parametrize("server_process", ["server_async.py", "server_sync.py"], indirect=True)
def test_seed_server_says_off_you_go_to_yellow(server_process: tuple[subprocess.Popen[str], int]) -> None:
    _, port = server_process
    conn = toad.Connection(f"http://localhost:{port}")
    conn.open(block=False)
    try:
        got = wait_for_messages(conn, 1)
        assert got == ["What is your favorite color?"]
        conn.send("yellow")
        assert wait_for_messages(conn, 1) == ["Fine. Off you go."]
        conn.send("blue")
        assert conn.wait_closed(10)
        conn.poll()
        assert conn.close_code == toad.CloseCode.NORMAL_CLOSURE
        assert not conn.isopen()
    finally:
        conn.close()


@pytest.mark.parametrize("server_process", ["server_player.py"], indirect=True)
def test_seed_player_example_replaces_the_client(server_process: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = server_process
    conn = toad.Connection(f"ws://localhost:{port}")
    conn.open(block=False)
    try:
        (welcome,) = wait_for_messages(conn, 1)
        team = welcome.removeprefix("Welcome to team ")
        assert team in ("red", "blue")
        conn.send("hello")
        line = read_line(proc)
        assert line == f"Message from team {team}: hello"
    finally:
        conn.close()


def wait_for_messages(conn: toad.Connection, count: int, timeout: float = 10.0) -> list[str | bytes]:
    got: list[str | bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {got!r} arrived within {timeout} s"
        conn.wait_events(remaining)
        got.extend(conn.messages())
    return got


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    # The server prints one line per message; readline blocks until it does.
    os.set_blocking(proc.stdout.fileno(), True)
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("server_process", ["server_async.py", "server_sync.py"], indirect=True)
def test_ctrl_c_on_a_seed_server_closes_every_client_with_1001(
    server_process: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = server_process
    conns = [toad.Connection(f"ws://localhost:{port}") for _ in range(2)]
    for conn in conns:
        conn.open(block=False)
        wait_for_messages(conn, 1)
    proc.send_signal(signal.SIGINT)
    for conn in conns:
        assert conn.wait_closed(10)
        conn.poll()
        assert conn.close_code == toad.CloseCode.GOING_AWAY
    proc.wait(10)


def test_a_client_program_that_exits_without_closing_says_going_away() -> None:
    server = toad.Server()
    server.start("127.0.0.1", 0, block=False)
    try:
        code = f"import toad; toad.open('ws://127.0.0.1:{server.port}', block=False)"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
        deadline = time.monotonic() + 10
        closed = []
        while not closed and time.monotonic() < deadline:
            server.wait_events(0.1)
            closed = server.closes()
        assert [client.close_code for client in closed] == [toad.CloseCode.GOING_AWAY]
    finally:
        server.stop()

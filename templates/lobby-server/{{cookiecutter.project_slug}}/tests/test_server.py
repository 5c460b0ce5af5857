"""server.py over real sockets on 127.0.0.1: the server runs on a thread, clients are toad connections."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import toad

from {{ cookiecutter.package_name }}.__main__ import parse_args
from {{ cookiecutter.package_name }}.server import GameServer

Message = dict[str, Any]
TIMEOUT = 10.0  # generous: a loaded machine is slow, but nothing here should take near this long


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[GameServer]:
    game = GameServer("127.0.0.1", 0, **{"tick_rate": 20, "rejoin_window": 30, **options})
    game.start()
    thread = threading.Thread(target=game.run, daemon=True)
    thread.start()
    try:
        yield game
    finally:
        game.request_stop()
        thread.join(TIMEOUT)
    assert not thread.is_alive()


@pytest.fixture
def game() -> Iterator[GameServer]:
    with serving() as game:
        yield game


class Peer:
    """A test client: a toad.Connection that collects the server's messages."""

    def __init__(self, port: int) -> None:
        self.conn = toad.Connection(f"ws://127.0.0.1:{port}")
        self.conn.open(block=False)
        self.inbox: list[Message] = []

    def send(self, **message: Any) -> None:
        assert self.conn.send(json.dumps(message))

    def expect(self, kind: str, match: Callable[[Message], bool] = lambda m: True) -> Message:
        """Wait for the next message of this type that matches, dropping the ones before it."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, message in enumerate(self.inbox):
                if message["type"] == kind and match(message):
                    del self.inbox[: i + 1]
                    return message
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind} within {TIMEOUT} s; got {self.inbox}"
            self.conn.wait_events(min(remaining, 0.1))
            self.inbox += [json.loads(text) for text in self.conn.messages()]

    def hello(self, name: str, token: str | None = None) -> Message:
        self.send(type="hello", name=name, **({"token": token} if token else {}))
        return self.expect("welcome")

    def wait_closed(self) -> int | None:
        deadline = time.monotonic() + TIMEOUT
        while self.conn.isopen():
            assert time.monotonic() < deadline, "the connection was not closed"
            self.conn.wait_events(0.1)
            self.conn.messages()
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()
        self.conn.wait_closed(TIMEOUT)


class RawPeer:
    """A WebSocket client on a plain socket, so a test can drop it without a Close frame."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, **message: Any) -> None:
        payload = json.dumps(message).encode()
        assert len(payload) < 126  # a short text frame, masked as a client must
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def expect(self, kind: str) -> Message:
        """The next message of this type (the server's frames are unmasked text frames under 64 KiB)."""
        while True:
            opcode, payload = self._frame()
            assert opcode == 0x1, f"frame {opcode:#x} {payload!r}"
            message = json.loads(payload)
            if message["type"] == kind:
                return message

    def expect_close(self) -> int:
        """Read up to the server's Close frame, and do not answer it: the code it carries."""
        while True:
            opcode, payload = self._frame()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    def _frame(self) -> tuple[int, bytes]:
        self._fill(2)
        opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
        assert length < 127
        if length == 126:
            self._fill(4)
            length, start = int.from_bytes(self.buffer[2:4], "big"), 4
        self._fill(start + length)
        payload, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
        return opcode, payload

    def drop(self) -> None:
        self.sock.close()  # no Close frame: to the server the connection was lost

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            self.buffer += self._recv()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        return data


def wait_until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {TIMEOUT} s"
        time.sleep(0.01)


def test_hello_gets_welcome_and_the_lobby(game: GameServer) -> None:
    ana = Peer(game.port)
    welcome = ana.hello("Ana")
    assert welcome["name"] == "Ana" and welcome["resumed"] is False and welcome["tick_rate"] == 20
    assert ana.expect("lobby")["online"] == 1
    ana.close()


def test_two_players_play_a_round(game: GameServer) -> None:
    ana, bo = Peer(game.port), Peer(game.port)
    ana_id, bo_id = ana.hello("Ana")["id"], bo.hello("Bo")["id"]
    ana.send(type="create", name="arena", private=True)
    code = ana.expect("room")["room"]["code"]
    bo.send(type="join", code=code)
    assert [p["id"] for p in bo.expect("room")["room"]["players"]] == [ana_id, bo_id]
    for peer in (ana, bo):
        peer.send(type="ready", ready=True)
    ana.expect("room", lambda m: all(p["ready"] for p in m["room"]["players"]))
    ana.send(type="start")
    for peer in (ana, bo):
        assert set(peer.expect("start")["setup"]["colors"]) == {ana_id, bo_id}
    bo.send(type="input", seq=1, input={"dx": 1, "dy": 0})
    state = bo.expect("state", lambda m: m["state"]["players"][bo_id]["ack"] == 1)
    assert ana.expect("state", lambda m: m["tick"] == state["tick"]) == state  # one state for everyone
    ana.send(type="chat", text="gg")
    assert bo.expect("chat", lambda m: m["from"] == ana_id)["text"] == "gg"
    ana.close()
    bo.close()


def test_bad_messages_get_errors_and_the_others_play_on(game: GameServer) -> None:
    ana, bo = Peer(game.port), Peer(game.port)
    ana.hello("Ana")
    bo.hello("Bo")
    for bad in ("{not json", "[]", json.dumps({"type": "dance"}), "x" * 5000):
        assert ana.conn.send(bad)
    assert ana.conn.send(b"\x00\x01")
    codes = [ana.expect("error")["code"] for _ in range(5)]
    assert codes == ["bad_json", "bad_json", "unknown_type", "too_large", "bad_json"]
    bo.send(type="chat", text="still here")
    assert ana.expect("chat")["text"] == "still here"
    ana.close()
    bo.close()


def test_a_stream_of_bad_messages_is_closed_with_1008(game: GameServer) -> None:
    bad, good = Peer(game.port), Peer(game.port)
    good.hello("Good")
    for _ in range(25):
        bad.conn.send("nonsense")
    assert bad.wait_closed() == 1008
    good.send(type="chat", text="fine")
    assert good.expect("chat")["text"] == "fine"
    good.close()


def test_a_player_who_quits_is_gone_at_once(game: GameServer) -> None:
    ana, bo = Peer(game.port), Peer(game.port)
    ana.hello("Ana")
    ana.expect("lobby", lambda m: m["online"] == 1)
    bo.hello("Bo")
    ana.expect("lobby", lambda m: m["online"] == 2)
    bo.close()  # 1000: on purpose
    ana.expect("lobby", lambda m: m["online"] == 1)
    ana.close()


def test_a_dropped_player_comes_back_into_the_same_seat(game: GameServer) -> None:
    ana, bo = Peer(game.port), RawPeer(game.port)
    ana.hello("Ana")
    bo.send(type="hello", name="Bo")
    welcome = bo.expect("welcome")
    ana.send(type="create", name="arena")
    room_id = ana.expect("room")["room"]["id"]
    bo.send(type="join", room=room_id)
    bo.expect("room")
    bo.drop()
    held = ana.expect("room", lambda m: not m["room"]["players"][1]["connected"])
    assert held["room"]["players"][1]["id"] == welcome["id"]

    again = Peer(game.port)
    back = again.hello("Bo", token=welcome["token"])
    assert (back["id"], back["resumed"], back["token"]) == (welcome["id"], True, welcome["token"])
    assert again.expect("room")["room"]["players"][1] == {
        "id": welcome["id"],
        "name": "Bo",
        "ready": False,
        "connected": True,
    }
    ana.expect("room", lambda m: m["room"]["players"][1]["connected"])
    again.send(type="chat", text="back")  # the server now sends to the new connection
    assert ana.expect("chat", lambda m: m["from"] == welcome["id"])["text"] == "back"
    again.expect("chat", lambda m: m["text"] == "back")
    again.close()
    ana.close()


def test_a_connection_the_server_is_still_closing_does_not_drop_the_player_who_came_back(game: GameServer) -> None:
    bo = Peer(game.port)
    bo.hello("Bo")
    first = RawPeer(game.port)
    first.send(type="hello", name="Ana")
    welcome = first.expect("welcome")
    for _ in range(20):
        first.send(type="dance")
    assert first.expect_close() == 1008  # ... which this client never answers: the server waits for it

    second = Peer(game.port)
    back = second.hello("Ana", token=welcome["token"])
    assert (back["id"], back["resumed"]) == (welcome["id"], True)
    first.drop()  # now the old connection ends, and its close reaches the server
    wait_until("the old connection to be gone", lambda: len(game.server.clients) == 2)
    second.send(type="create", name="arena")  # 20 errors were the old connection's, not this one's
    room = second.expect("room")["room"]
    assert room["players"] == [{"id": back["id"], "name": "Ana", "ready": False, "connected": True}]
    assert game.lobby.players[back["id"]].connected
    second.close()
    bo.close()
    wait_until("every player and room to be gone", lambda: not game.lobby.players and not game.lobby.rooms)


def test_a_connection_that_does_not_say_hello_is_closed() -> None:
    with serving(hello_timeout=1.0) as game:
        silent, polite = Peer(game.port), Peer(game.port)
        polite.hello("Polite")
        assert silent.wait_closed() == 1008
        assert silent.conn.close_reason == "say hello first"
        time.sleep(0.2)
        polite.send(type="chat", text="still here")
        assert polite.expect("chat")["text"] == "still here"
        polite.close()


def test_connections_past_the_limit_are_turned_away() -> None:
    assert parse_args([]).max_connections == 1000
    assert parse_args(["--max-connections", "5"]).max_connections == 5
    with serving(max_connections=2) as game:
        peers = [Peer(game.port), Peer(game.port)]
        for i, peer in enumerate(peers):
            peer.hello(f"p{i}")
        with socket.create_connection(("127.0.0.1", game.port), timeout=TIMEOUT) as sock:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            answer = b""
            while b"\r\n" not in answer:
                data = sock.recv(1024)
                assert data, answer
                answer += data
            assert answer.startswith(b"HTTP/1.1 503"), answer
        for peer in peers:
            peer.close()


def test_at_a_high_tick_rate_a_client_may_send_an_input_every_tick() -> None:
    with serving(tick_rate=120) as game:
        ana = Peer(game.port)
        ana.hello("Ana")
        ana.send(type="create", name="arena")
        ana.expect("room")
        for seq in range(1, 301):  # 2.5 s of inputs at 120 ticks, at once (a waiting room drops them)
            ana.send(type="input", seq=seq, input={"dx": 1, "dy": 0})
        ana.send(type="chat", text="still here")
        assert ana.expect("chat")["text"] == "still here"
        ana.close()


def test_stop_closes_every_connection_with_1001(game: GameServer) -> None:
    peers = [Peer(game.port), Peer(game.port)]
    for i, peer in enumerate(peers):
        peer.hello(f"p{i}")
    game.request_stop()
    assert [peer.wait_closed() for peer in peers] == [1001, 1001]
    wait_until("stop() to hand over every close", lambda: not game.server.running and not game.server.clients)
    assert game.lobby.online == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_python_dash_m_serves_until_sigint_and_exits_0() -> None:
    project = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--host", "127.0.0.1", "--port", "0"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert server.stderr is not None
        found = None
        while found is None:
            line = server.stderr.readline()
            assert line, "the server exited before it said where it serves"
            found = re.search(r"serving on ws://127\.0\.0\.1:(\d+) — Ctrl-C stops", line)
        peer = Peer(int(found.group(1)))
        peer.hello("Ana")
        server.send_signal(signal.SIGINT)
        assert peer.wait_closed() == 1001
        assert server.wait(TIMEOUT) == 0
        rest = server.stderr.read()
        assert "stopped, 1 player online" in rest.splitlines()[-1], rest
        assert "Traceback" not in rest
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()

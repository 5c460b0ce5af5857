"""The client against a scripted server over real sockets: a whole session, a server restart, the bot."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pygame

from {{ cookiecutter.package_name }} import model as m
from {{ cookiecutter.package_name }} import scenes

from .scripted_server import ScriptedServer

PROJECT = Path(__file__).resolve().parents[1]


def run_until(app: scenes.App, done: Callable[[], bool], timeout: float = 15.0) -> None:
    """Run the App's frames until ``done()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out: screen={app.model.screen} link={app.model.link}"
        app.frame()


def test_session_lobby_room_game_and_reconnect_with_the_token() -> None:
    server = ScriptedServer()
    app = scenes.App(server.url, "Ana")
    try:
        assert app.connect("Ana")
        run_until(app, lambda: app.model.screen == m.LOBBY and app.model.lobby_seen)
        assert server.wait_for(lambda msg: msg["type"] == "hello") == {"type": "hello", "name": "Ana"}

        app.net.create("Test room")
        run_until(app, lambda: app.model.screen == m.ROOM and app.model.is_host())
        app.net.ready(True)
        run_until(app, lambda: app.model.can_start())
        app.net.start()
        run_until(app, lambda: app.model.screen == m.GAME and app.model.can_move())

        for _ in range(3):
            app.move({"dx": 1, "dy": 1})
        run_until(app, lambda: not app.model.pending)
        assert app.model.state is not None
        server_me = app.model.state["players"][app.model.me]
        assert app.model.own == (server_me["x"], server_me["y"]) != (100.0, 100.0)
        assert app.model.stats.own_error_max < 1e-9  # the same step on both sides

        # The server restarts on the same port: toad reconnects and the App says hello with the token.
        token, old = app.net.token, server
        assert token
        server.stop()
        run_until(app, lambda: app.model.link == m.RECONNECTING)
        app.draw(time.monotonic())  # the lost screen: "reconnecting…"
        assert app.scene().key == "lost"
        server = ScriptedServer(old.port, previous=old)
        run_until(app, lambda: app.model.stats.welcomes == 2 and app.model.screen == m.GAME, timeout=20)
        assert server.wait_for(lambda msg: msg["type"] == "hello") == {"type": "hello", "name": "Ana", "token": token}
        stats = app.model.stats
        assert (stats.welcomes, stats.resumed, stats.lost, stats.games_started) == (2, 1, 1, 2)
    finally:
        app.close(leave=True)
        server.stop()


def test_a_first_connect_that_fails_offers_retry() -> None:
    server = ScriptedServer()
    port = server.port
    server.stop()  # nothing listens there now
    app = scenes.App(f"ws://127.0.0.1:{port}", "Ana")
    try:
        app.connect("Ana")
        run_until(app, lambda: app.model.link == m.FAILED)
        assert app.scene().key == "lost" and "listening" in app.model.link_error
    finally:
        app.close()


def test_the_window_keeps_drawing_while_a_silent_server_times_out_then_retry_works() -> None:
    # Accepts TCP (the kernel does, into the backlog) but never answers the WebSocket handshake.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        app = scenes.App(f"ws://127.0.0.1:{port}", "Ana", open_timeout=0.6)
        try:
            for attempt in range(2):  # the first connect, then Retry from the failure screen
                if attempt == 0:
                    assert app.connect("Ana")
                else:
                    lost = app.scenes["lost"]
                    assert isinstance(lost, scenes.LostScene)
                    lost.retry_button.on_click()
                assert app.model.link == m.CONNECTING
                frames, longest = 0, 0.0
                while app.model.link == m.CONNECTING:
                    assert app.scene().key == "name"
                    started = time.monotonic()
                    app.frame()
                    longest = max(longest, time.monotonic() - started)
                    frames += 1
                    assert frames < 2000, "still connecting long after open_timeout"
                assert app.model.link == m.FAILED and app.scene().key == "lost"
                assert "timed out" in app.model.link_error
                # ~36 frames at 60 fps in 0.6 s; a loaded machine draws fewer, but never just one.
                assert frames >= 4 and longest < 0.5, (frames, longest)
                app.draw(time.monotonic())
        finally:
            app.close()


def test_closing_the_window_while_connecting_exits_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        app = scenes.App(f"ws://127.0.0.1:{silent.getsockname()[1]}", "Ana", open_timeout=30)
        started = time.monotonic()
        try:
            assert app.connect("Ana")
            for _ in range(3):
                app.frame()
            pygame.event.post(pygame.event.Event(pygame.QUIT))
            assert app.run() == "quit"
        finally:
            app.close()
        assert time.monotonic() - started < 5  # not the 30 s of open_timeout


def test_bot_plays_against_the_scripted_server(tmp_path: Path) -> None:
    server = ScriptedServer(game_ticks=20)  # one-second games
    # With --screenshot the bot stays 1.3 s on each screen: name, lobby, room, then a game of 1 s.
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}"]
    command += ["--bot", "--name", "bot1", "--url", server.url]
    command += ["--players", "1", "--seconds", "6", "--report", str(report), "--screenshot", str(tmp_path)]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    try:
        done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["exit"] == "seconds" and data["name"] == "bot1" and data["id"] == "p1"
    assert (data["welcomes"], data["resumed"], data["lost"], data["errors"]) == (1, 0, 0, [])
    assert data["rooms_seen"] == ["r1"]
    assert ["room", "bot1", "hello from bot1"] in data["chats"]
    assert data["games_started"] >= 1 and data["games_ended"] >= 1 and data["states"] >= 20
    assert data["own_error_max"] < 1e-9
    assert 0 < len(data["ticks"]) <= 200 and data["first_tick"] <= data["last_tick"]
    assert all(server.hashes[int(tick)] == digest for tick, digest in data["ticks"].items())
    assert set(data) == {
        "name", "id", "welcomes", "resumed", "rooms_seen", "chats", "errors", "games_started", "games_ended",
        "states", "first_tick", "last_tick", "ticks", "own_error_max", "scores", "lost", "exit",
    }  # fmt: skip
    assert any(msg["type"] == "leave" for msg in server.received)  # it said goodbye...
    assert 1000 in server.close_codes  # ...and closed with 1000, so the server frees its seat at once
    assert {"name.png", "lobby.png", "room.png"} <= {p.name for p in tmp_path.iterdir()}

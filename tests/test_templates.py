"""The cookiecutter templates, baked for real.

Each template is baked with its default answers and with awkward ones (spaces,
unicode, quotes, a backslash, an emoji), each generated project's own tests run
and its code is ruff clean, and then the generated server plays a whole session
with three generated clients in ``--bot`` mode, one of which loses its
connection and comes back into its seat.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toad

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

cookiecutter_main = pytest.importorskip("cookiecutter.main", reason="the dev extra installs cookiecutter")
from cookiecutter.exceptions import FailedHookException  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
AWKWARD = 'Zoë\'s "Big" Game \\ 🐸'
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "awkward": {"project_name": AWKWARD, "description": AWKWARD},
}
CHILD_ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONDONTWRITEBYTECODE": "1"}


def bake(template: str, output_dir: Path, **answers: str) -> Path:
    """Render a template the way ``cookiecutter templates/NAME`` does; returns the project's folder."""
    result = cookiecutter_main.cookiecutter(
        str(TEMPLATES / template), no_input=True, output_dir=str(output_dir), extra_context=answers
    )
    return Path(result)


def package_of(project: Path) -> str:
    """The import name of a generated project (the one folder holding ``__main__.py``)."""
    [main] = [p for p in project.glob("*/__main__.py") if p.parent.name != "tests"]
    return main.parent.name


@pytest.fixture(scope="module", params=[(t, v) for t in ("lobby-server", "multiplayer-client") for v in VARIANTS])
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    template, variant = request.param
    extra = dict(VARIANTS[variant])
    if template == "multiplayer-client" and variant == "awkward":
        extra["window_title"] = AWKWARD
    project = bake(template, tmp_path_factory.mktemp(f"{template}-{variant}"), **extra)
    return template, variant, project


# -- baking -------------------------------------------------------------------------


def test_the_generated_project_passes_its_own_tests(baked: tuple[str, str, Path]) -> None:
    _, _, project = baked
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout), done.stdout[-2000:]
    assert "skipped" not in done.stdout


def test_the_generated_code_is_ruff_clean(baked: tuple[str, str, Path]) -> None:
    _, _, project = baked
    for command in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=project, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_answers_arrive_intact(baked: tuple[str, str, Path]) -> None:
    template, variant, project = baked
    expected = VARIANTS[variant].get("project_name", "My Game Server" if template == "lobby-server" else "My Game")
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["name"] == project.name
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", project.name)
    assert "toad-ws" in " ".join(meta["dependencies"])
    assert expected in (project / "README.md").read_text(encoding="utf-8")
    # The free-text answers reach Python as the very same strings.
    package = package_of(project)
    names = "NAME, WINDOW_TITLE" if template == "multiplayer-client" else "NAME"
    shown = subprocess.run(
        [sys.executable, "-c", f"import json; from {package}.settings import {names}; print(json.dumps([{names}]))"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [expected] * len(names.split(","))


@pytest.mark.parametrize("template", ["lobby-server", "multiplayer-client"])
@pytest.mark.parametrize("name", ["toad", "pygame", "json", "class"])
def test_a_project_name_that_cannot_be_a_package_is_refused(template: str, name: str, tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        bake(template, tmp_path, project_name=name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("template", "folder"), [("lobby-server", "my-game-server"), ("multiplayer-client", "my-game")]
)
def test_a_name_with_no_letters_gets_the_default_folder(template: str, folder: str, tmp_path: Path) -> None:
    project = bake(template, tmp_path, project_name="🐸")
    assert project.name == folder
    assert "🐸" in (project / "README.md").read_text(encoding="utf-8")


# -- a whole session ------------------------------------------------------------------


class Proxy:
    """A TCP relay in front of the server whose connections the test can cut, as a lost Wi-Fi would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.pairs.append((down, up))
                self.accepted += 1
            threading.Thread(target=self._relay, args=(down, up), daemon=True).start()
            threading.Thread(target=self._relay, args=(up, down), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> int:
        """Reset every connection through the proxy at once (no Close frame, no FIN: an RST)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
        return len(pairs)

    def close(self) -> None:
        self.listener.close()
        self.cut()


class Watcher:
    """A player who stays in the lobby and reads what the server tells the lobby."""

    def __init__(self, url: str) -> None:
        self.conn = toad.Connection(url)
        self.lobby: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.conn.onmessage(self._on_message)
        self.conn.open(block=False)
        self.conn.send(json.dumps({"type": "hello", "name": "watcher"}))

    def _on_message(self, message: str | bytes) -> None:
        data = json.loads(message)
        if data["type"] == "lobby":
            self.lobby = data
        elif data["type"] == "error":
            self.errors.append(data)

    def wait(self, what: str, done: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.conn.poll()
            result = done()
            if result:
                return result
            self.conn.wait_events(0.05)
        raise AssertionError(f"{what} did not happen within {timeout} s; the lobby says {self.lobby}")

    def room(self, name: str) -> dict[str, Any] | None:
        return next((room for room in self.lobby.get("rooms", []) if room["name"] == name), None)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The generated server, running on a free port, and the generated client's folder."""
    server_dir = bake("lobby-server", tmp_path / "server")
    client_dir = bake("multiplayer-client", tmp_path / "client")
    log = (tmp_path / "server.log").open("w+", encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-m", package_of(server_dir), "--host", "127.0.0.1", "--port", "0"],
        cwd=server_dir,
        env=CHILD_ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            assert server.poll() is None, Path(log.name).read_text(encoding="utf-8")
            found = re.search(r"ws://[^\s:]+:(\d+)", Path(log.name).read_text(encoding="utf-8"))
            if found:
                port = int(found.group(1))
            elif time.monotonic() > deadline:
                raise AssertionError("the generated server never said where it serves")
            else:
                time.sleep(0.05)
        yield {"server": server, "port": port, "log": Path(log.name), "client_dir": client_dir, "tmp": tmp_path}
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(10)
        log.close()


def start_bot(client_dir: Path, url: str, name: str, report: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            package_of(client_dir),
            "--bot",
            "--url",
            url,
            "--name",
            name,
            "--room",
            "arena",
            "--players",
            "3",
            "--seconds",
            str(seconds),
            "--report",
            str(report),
        ],
        cwd=client_dir,
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_session_between_the_generated_server_and_three_bots(session: dict[str, Any]) -> None:
    port, client_dir, tmp = session["port"], session["client_dir"], session["tmp"]
    direct = f"ws://127.0.0.1:{port}"
    proxy = Proxy(port)
    watcher = Watcher(direct)
    reports = {name: tmp / f"{name}.json" for name in ("ana", "bo", "cy")}
    bots: dict[str, subprocess.Popen[str]] = {}
    try:
        # Ana creates the room; Bo and Cy join it once it is listed (Cy through the proxy).
        bots["ana"] = start_bot(client_dir, direct, "ana", reports["ana"], seconds=24)
        watcher.wait("ana's room in the lobby", lambda: watcher.room("arena"), timeout=30)
        bots["bo"] = start_bot(client_dir, direct, "bo", reports["bo"], seconds=22)
        bots["cy"] = start_bot(client_dir, f"ws://127.0.0.1:{proxy.port}", "cy", reports["cy"], seconds=20)
        watcher.wait("the game", lambda: (watcher.room("arena") or {}).get("state") == "playing", timeout=30)
        # Play a few seconds, then Cy's connection drops without a word.
        end = time.monotonic() + 4
        while time.monotonic() < end:
            watcher.conn.poll()
            watcher.conn.wait_events(0.05)
        assert proxy.cut() == 1
        outputs = {}
        for name, bot in bots.items():
            outputs[name], _ = bot.communicate(timeout=90)
            assert bot.returncode == 0, f"{name}:\n{outputs[name][-3000:]}"
        # Everyone left: only the watcher is online, and the room is gone.
        watcher.wait("the room to close", lambda: watcher.room("arena") is None, timeout=15)
        watcher.wait("the others to leave", lambda: watcher.lobby.get("online") == 1, timeout=15)
    finally:
        for bot in bots.values():
            if bot.poll() is None:
                bot.kill()
        watcher.conn.close()
        watcher.conn.wait_closed(5)
        proxy.close()

    report = {name: json.loads(path.read_text(encoding="utf-8")) for name, path in reports.items()}
    ids = {report[name]["id"] for name in report}
    assert len(ids) == 3
    for name, seen in report.items():
        assert seen["exit"] == "seconds", (name, seen["exit"])
        assert seen["errors"] == [], (name, seen["errors"])
        assert seen["games_started"] >= 1, name
        assert seen["states"] >= 40, (name, seen["states"])  # at least two seconds of ticks
        assert seen["own_error_max"] < 1.0, (name, seen["own_error_max"])
    # Chat: Ana, the host, heard each of the others say hello in the room.
    heard = {text for scope, _, text in report["ana"]["chats"] if scope == "room"}
    assert {"hello from bo", "hello from cy"} <= heard
    # Cy lost the connection once and came back into the same seat, under the same id.
    assert report["cy"]["lost"] >= 1 and report["cy"]["resumed"] >= 1 and report["cy"]["welcomes"] >= 2
    assert proxy.accepted >= 2
    # The game moved on: someone scored, and every tick two players both saw looks the same to both.
    assert any(score > 0 for seen in report.values() for score in seen["scores"].values())
    for a, b in (("ana", "bo"), ("ana", "cy"), ("bo", "cy")):
        common = set(report[a]["ticks"]) & set(report[b]["ticks"])
        assert len(common) >= 20, (a, b, len(common))
        assert all(report[a]["ticks"][t] == report[b]["ticks"][t] for t in common), (a, b)
    assert watcher.errors == []

    # The server ends with nobody online and nothing but INFO in its log.
    server = session["server"]
    server.send_signal(signal.SIGINT)
    assert server.wait(30) == 0
    text = session["log"].read_text(encoding="utf-8")
    assert "0 players online" in text.splitlines()[-1], text[-2000:]
    for bad in ("Traceback", "WARNING", "ERROR", "CRITICAL"):
        assert bad not in text, text[-4000:]
    # The reports' digests are sha1 hex strings of the canonical JSON of each state.
    assert all(re.fullmatch(r"[0-9a-f]{40}", d) for d in report["ana"]["ticks"].values())

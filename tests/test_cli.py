"""The ``toad`` command, run as a real process: new, connect, echo, and the wheel that ships the templates."""

from __future__ import annotations

import ast
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

import toad
from toad.cli import TEMPLATES, find_templates

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = find_templates([REPO / "templates"])


def toad_env(home: Path) -> dict[str, str]:
    """The environment for a toad process: UTF-8 pipes, and a HOME of its own (cookiecutter writes replay files)."""
    return {**os.environ, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "HOME": str(home), "USERPROFILE": str(home)}


def run_toad(*args: str, cwd: Path, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m toad ARGS`` to the end; stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "toad", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=toad_env(cwd / "home"),
        timeout=timeout,
    )


class Lines:
    """The lines a process prints, read on a thread so that a test can wait for one with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 10) -> str | None:
        """The next line (``None`` at the end of the output); fails after ``timeout`` seconds."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s") from None

    def rest(self, timeout: float = 10) -> list[str]:
        """Every line until the end of the output."""
        lines = []
        while (line := self.next(timeout)) is not None:
            lines.append(line)
        return lines


def start_toad(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "toad", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=toad_env(cwd / "home"),
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


class Polled(NamedTuple):
    server: toad.Server
    seen: list[str | bytes]  # every message it received


@pytest.fixture
def polled() -> Iterator[Polled]:
    """A toad.Server on 127.0.0.1 that echoes, polled on a thread of the test, with the chat subprotocol.

    "close me" makes it close that connection with 4001 "as asked".
    """
    server = toad.Server(subprotocols=["chat"])
    seen: list[str | bytes] = []

    @server.onmessage
    def onmessage(client: toad.Client, message: str | bytes) -> None:
        seen.append(message)
        if message == "close me":
            client.close(4001, "as asked")
        else:
            client.send(message)

    server.start("127.0.0.1", 0, block=False)
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            server.wait_events(0.05)
            server.poll()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    yield Polled(server, seen)
    stop.set()
    thread.join(5)
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the command line ------------------------------------------------------------


def test_help_version_and_no_command(tmp_path: Path) -> None:
    result = run_toad("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("new", "connect", "echo"):
        assert command in result.stdout
    result = run_toad("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"toad {toad.__version__}")
    result = run_toad(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: toad" in result.stderr
    result = run_toad("new", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert all(name in result.stdout for name in TEMPLATES)


def test_import_toad_leaves_the_cli_and_cookiecutter_out(tmp_path: Path) -> None:
    code = "import sys, toad; print([m for m in sys.modules if m.split('.')[0] == 'cookiecutter' or m == 'toad.cli'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert result.stdout.strip() == "[]"


def test_find_templates_takes_the_first_folder_that_has_any(tmp_path: Path) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    (full / "lobby-server").mkdir(parents=True)
    (full / "lobby-server" / "cookiecutter.json").write_text("{}")
    (full / "not-a-template").mkdir()
    assert find_templates([empty, full]) == {"lobby-server": full / "lobby-server"}
    assert find_templates([empty]) == {}


# -- toad new ------------------------------------------------------------------------


def rendered_files(project: Path) -> list[Path]:
    return [path for path in project.rglob("*") if path.is_file()]


def test_the_repo_holds_exactly_the_templates_toad_new_lists() -> None:
    assert sorted(TEMPLATE_DIRS) == sorted(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_new_renders_each_template_with_defaults(tmp_path: Path, template: str) -> None:
    result = run_toad("new", template, "--no-input", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    projects = list((tmp_path / "out").iterdir())
    assert len(projects) == 1
    project = projects[0]
    assert not [p for p in project.rglob("*") if "{{" in p.name or "{%" in p.name]
    mains = list(project.glob("*/__main__.py"))
    assert len(mains) == 1
    assert f"cd {Path('out', project.name)}" in result.stdout
    assert f"python -m {mains[0].parent.name}" in result.stdout


def test_new_takes_a_name_and_settings_after_the_options(tmp_path: Path) -> None:
    result = run_toad("new", "lobby-server", "Space Race", "--no-input", "project_slug=space-race-server", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "space-race-server"
    assert project.is_dir()
    assert any("Space Race" in path.read_text("utf-8", "replace") for path in rendered_files(project))
    assert "cd space-race-server" in result.stdout


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_new_with_an_awkward_name(tmp_path: Path, template: str) -> None:
    name = 'Zoë\'s "Big" Game 🐸'
    result = run_toad("new", template, name, "--no-input", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (project,) = [path for path in tmp_path.iterdir() if path.name != "home"]
    # The name went into the Python it generated as string literals that parse back to the name itself.
    strings = set()
    for path in project.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        strings |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert name in strings


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["Game", "notapair"], "'notapair' is not a setting: write key=value"),
        (["Game", "=x"], "'=x' is not a setting: write key=value"),
        (["colour=red"], "the lobby-server template has no setting 'colour': it has project_name"),
        (["Game", "project_name=Other"], "project_name is given twice"),
    ],
)
def test_new_refuses_bad_settings(tmp_path: Path, words: list[str], expected: str) -> None:
    result = run_toad("new", "lobby-server", *words, "--no-input", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"toad new: error: {expected}")
    assert len(result.stderr.splitlines()) == 1
    assert [path.name for path in tmp_path.iterdir()] in ([], ["home"])


@pytest.mark.parametrize("words", [[], ["pong-server"]])
def test_new_lists_the_templates_when_none_or_an_unknown_one_is_named(tmp_path: Path, words: list[str]) -> None:
    result = run_toad("new", *words, cwd=tmp_path)
    assert result.returncode == 2
    first, *listing = result.stderr.splitlines()
    assert first.startswith("toad new: error: ")
    for name, description in TEMPLATES.items():
        assert any(line.split() == [name, *description.split()] for line in listing)


def test_new_refuses_an_existing_folder_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "my-game").mkdir()
    (tmp_path / "my-game" / "notes.txt").write_text("mine")
    result = run_toad("new", "multiplayer-client", "My Game", "--no-input", cwd=tmp_path)
    assert result.returncode == 1
    assert "my-game already exists" in result.stderr
    assert "--overwrite" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    result = run_toad("new", "multiplayer-client", "My Game", "--no-input", "--overwrite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my-game" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "my-game" / "pyproject.toml").is_file()


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_new_reports_a_refusing_hook_in_one_line(tmp_path: Path, template: str) -> None:
    result = run_toad("new", template, "toad", "--no-input", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("toad new: error:")]
    assert errors == [
        f"toad new: error: the {template} template refused these settings: see its message above, "
        "change that setting and try again (nothing was created)"
    ]
    assert not (tmp_path / "toad").exists()


def test_new_without_cookiecutter_says_how_to_get_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['cookiecutter'] = None\n"
        "from toad.cli import main\n"
        "sys.exit(main(['new', 'lobby-server', '--no-input']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == 'toad new: error: toad new needs cookiecutter: pip install "toad-ws[new]"\n'


# -- toad echo -----------------------------------------------------------------------


def test_echo_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process, lines = start_toad("echo", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path)
    try:
        banner = lines.next()
        assert banner is not None
        match = re.fullmatch(r"echo server on ws://127\.0\.0\.1:(\d+) \N{EM DASH} Ctrl-C stops", banner)
        assert match, banner
        with ws_connect(f"ws://127.0.0.1:{match.group(1)}", open_timeout=5) as ws:
            ws.send("hello 🐸")
            assert ws.recv(5) == "hello 🐸"
            ws.send(b"\x00\xff")
            assert ws.recv(5) == b"\x00\xff"
            assert (lines.next() or "").startswith("+ client ")
            process.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        assert process.wait(10) == 0
        rest = lines.rest()
        assert rest[0] == "stopping: closing 1 connection with 1001"
        assert re.fullmatch(r"- client \d+ left: 1001 .* \(0 connected\)", rest[1]), rest
    finally:
        process.kill()
        process.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be sent to a process on Windows")
def test_echo_stops_on_sigterm(tmp_path: Path) -> None:
    process, lines = start_toad("echo", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path)
    try:
        assert (lines.next() or "").startswith("echo server on ws://127.0.0.1:")
        process.terminate()
        assert process.wait(10) == 0
        assert lines.rest() == ["stopping: closing 0 connections with 1001"]
    finally:
        process.kill()
        process.wait()


def test_echo_on_a_taken_port_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_toad("echo", "--host", "127.0.0.1", "--port", str(taken.getsockname()[1]), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("toad echo: error: ")
    assert len(result.stderr.splitlines()) == 1


# -- toad connect ----------------------------------------------------------------------


def test_connect_sends_lines_and_shows_what_arrives(tmp_path: Path, polled: Polled) -> None:
    url = f"ws://127.0.0.1:{polled.server.port}/"
    process, lines = start_toad(
        "connect", url, "--header", "X-Player: zoë", "--subprotocol", "chat", "-s", "other", cwd=tmp_path
    )
    assert process.stdin is not None

    def typed(line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()

    try:
        assert (
            lines.next() == f"connected to {url} (subprotocol chat): type a message and press Enter, /help for commands"
        )
        (client,) = polled.server.clients
        assert client.headers.get("X-Player") == "zoë"
        typed("hello 🐸")
        assert lines.next() == "< hello 🐸"
        typed("//slash")
        assert lines.next() == "< /slash"
        typed("/binary 00 ff 10")
        assert lines.next() == "< [binary 3 bytes] 00ff10"
        typed("/binary " + "ab" * 40)
        assert lines.next() == "< [binary 40 bytes] " + "ab" * 32 + "..."
        typed("/nope")
        assert (lines.next() or "").startswith("unknown command /nope: /help lists them")
        typed("/close 4000 bye")
        assert lines.next() == "closed: 4000"
        assert lines.next() is None
        assert process.wait(10) == 0
        assert (client.close_code, client.close_reason) == (4000, "bye")
        assert polled.seen == ["hello 🐸", "/slash", b"\x00\xff\x10", b"\xab" * 40]
    finally:
        process.kill()
        process.wait()


def test_connect_closes_with_1000_at_the_end_of_stdin(tmp_path: Path, polled: Polled) -> None:
    result = run_toad("connect", f"ws://127.0.0.1:{polled.server.port}", cwd=tmp_path, stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "closed: 1000"


def test_connect_exits_0_when_the_server_closes(tmp_path: Path, polled: Polled) -> None:
    process, lines = start_toad("connect", f"ws://127.0.0.1:{polled.server.port}", cwd=tmp_path)
    assert process.stdin is not None
    try:
        assert (lines.next() or "").startswith("connected to ")
        process.stdin.write("close me\n")
        process.stdin.flush()
        assert lines.next() == "closed: 4001 as asked"
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()


def test_connect_to_nothing_fails_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    result = run_toad("connect", f"ws://127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"toad connect: error: nothing is listening at ws://127.0.0.1:{port}/: " + (
        "start the server first, or check the host and port\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ftp://localhost"], "toad connect: error: 'ftp://localhost' has the scheme 'ftp'"),
        (["ws://localhost", "--header", "nocolon"], "toad connect: error: 'nocolon' is not a header"),
    ],
)
def test_connect_usage_errors(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run_toad("connect", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)


# -- the wheel -------------------------------------------------------------------------


def test_the_wheel_ships_the_templates_and_toad_new_works_from_it(tmp_path: Path) -> None:
    # Build from a copy: the build writes build/ and an .egg-info next to pyproject.toml.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache")
    for name in ("toad", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            dist,
            source,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("toad_ws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    assert {"toad/cli.py", "toad/__main__.py", "toad/py.typed"} <= names
    for template_dir in TEMPLATE_DIRS.values():
        for path in template_dir.rglob("*"):
            relative = path.relative_to(REPO / "templates").as_posix()
            if path.is_file() and "__pycache__" not in relative and not relative.endswith(".pyc"):
                assert f"toad/templates/{relative}" in names
    assert not [name for name in names if name.endswith(".pyc")]
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "toad = toad.cli:main" in archive.read(entry_points).decode()

    # python -S: no site, so the editable install's finder stays out; cookiecutter comes from site-packages.
    cookiecutter = pytest.importorskip("cookiecutter")
    libraries = {
        Path(cookiecutter.__file__).parent.parent,
        *(Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")),
    }
    env = toad_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "unpacked"), *map(str, libraries)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import toad.cli; print(toad.cli.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "unpacked")
    for template in TEMPLATES:
        result = subprocess.run(
            [sys.executable, "-S", "-m", "toad", "new", template, f"From {template}", "--no-input"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=elsewhere,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert (elsewhere / f"from-{template}").is_dir()

"""The ``toad`` command: start a project, talk to a server, run an echo server.

::

    toad new lobby-server "Space Race"     # a new project from a template (needs cookiecutter)
    toad connect ws://localhost:8001       # type messages, see what the server answers
    toad echo                              # a server that sends every message back

``python -m toad`` is the same command. ``toad COMMAND --help`` tells more.

Exit status: 0 when the command did its job, 1 when it failed (nothing
listening, a template that refused its settings), 2 for a command line that
cannot work (a bad option, an unknown template); the message on stderr says
what to do. This module sits on top of toad and uses only its public API
(``toad.Connection``, ``toad.Server``, the exceptions): ``import toad`` never
imports it, nor cookiecutter, which only ``toad new`` needs.
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import io
import json
import logging
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, TextIO

import toad

__all__ = ["TEMPLATES", "CommandError", "find_templates", "main", "template_roots"]

#: The templates ``toad new`` knows, each with the line ``toad new`` shows for it.
TEMPLATES: dict[str, str] = {
    "lobby-server": "a game server with a lobby: players pick a name, make or join rooms, and play",
    "multiplayer-client": "a pygame-ce game that connects to a server and shows every player moving",
}

_NEW_EXTRA = 'pip install "toad-ws[new]"'
_HEX_SHOWN = 32  # bytes of a binary message `toad connect` shows; the rest is "..."
_TICK = 0.02  # seconds `toad connect` waits for the network before it looks at the keyboard again

_NEW_EXAMPLES = """\
examples:
  toad new lobby-server "Space Race"
  toad new multiplayer-client --no-input -o games
  toad new lobby-server my-server port=9000   (key=value answers one of the template's questions)"""

_CONNECT_HELP = """\
commands (anything else you type is sent as a text message):
  /binary HEX             send a binary message, like /binary 00ff10 (spaces allowed)
  /close [CODE [REASON]]  close the connection, like /close 4000 game over (default 1000)
  /quit                   close the connection with 1000 and leave (Ctrl-D does the same)
  /help                   show this list
  //text                  send "/text" (a message that starts with /)"""


class CommandError(Exception):
    """A command that cannot go on: ``str(error)`` for the user, ``code`` the exit status.

    ``code`` is 2 when the command line cannot work and 1 when the command
    failed. ``more`` is printed after the message (a list of templates, say).
    """

    def __init__(self, message: str, code: int = 1, more: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.more = more


# -- the command line ----------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``toad`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Never raises for the user's mistakes or the network's: it prints one line
    that says what went wrong and what to do, and returns 1 or 2. Ctrl-C
    returns 130 where the command has nothing to close cleanly.
    """
    _line_by_line()
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    if extras:
        # Settings may come after the options (toad new lobby-server --no-input port=9000);
        # argparse hands back the positional words it found past an option.
        if command == "new" and not any(word.startswith("-") for word in extras):
            args.words = [*args.words, *extras]
        else:
            args.subparser.error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        code: int = args.run(args)
    except CommandError as error:
        _say(f"{args.subparser.prog}: error: {error}", sys.stderr)
        if error.more:
            _say(error.more, sys.stderr)
        return error.code
    except KeyboardInterrupt:
        _say(f"{args.subparser.prog}: stopped", sys.stderr)
        return 130
    return code


def build_parser() -> argparse.ArgumentParser:
    """The ``toad`` argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="toad",
        description="toad: WebSockets for pygame-ce game jams.",
        epilog=(
            "examples:\n"
            '  toad new lobby-server "Space Race"   start a game server project in ./space-race\n'
            "  toad echo                           run a server that sends every message back\n"
            "  toad connect ws://localhost:8001    type messages to a server, see its answers\n"
            "\n"
            "toad COMMAND --help tells more about each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"toad {toad.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    new = commands.add_parser(
        "new",
        help="start a new project from a template (a lobby server or a multiplayer game)",
        usage="toad new TEMPLATE [NAME] [key=value ...] [--no-input] [-o DIR] [--overwrite]",
        description=(
            "Start a new project from one of toad's templates, in a new folder named after it.\n"
            "Without --no-input it asks a few questions first (press Enter to keep the [default]).\n"
            f"It needs cookiecutter: {_NEW_EXTRA}"
        ),
        epilog="templates:\n" + _template_list(TEMPLATES) + "\n\n" + _NEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("template", nargs="?", metavar="TEMPLATE", help="which template: " + " or ".join(TEMPLATES))
    new.add_argument(
        "words",
        nargs="*",
        metavar="NAME key=value",
        help="the project's name (its project_name), then answers to the template's questions",
    )
    new.add_argument("--no-input", action="store_true", help="ask nothing: use the defaults and the key=value given")
    new.add_argument(
        "-o", "--output-dir", default=".", metavar="DIR", help="where to create the project folder (default: here)"
    )
    new.add_argument("--overwrite", action="store_true", help="write into the project folder even if it exists")
    new.set_defaults(command="new", run=_new, subparser=new)

    connect = commands.add_parser(
        "connect",
        help="connect to a WebSocket server: type messages, see its answers",
        usage="toad connect URL [--header 'NAME: VALUE']... [--subprotocol NAME]...",
        description=(
            "Connect to a WebSocket server. Each line you type is sent as a text message;\n"
            "each message that arrives is printed as '< message'. Ctrl-D (Ctrl-Z Enter on\n"
            "Windows) or Ctrl-C closes the connection and leaves."
        ),
        epilog=_CONNECT_HELP + "\n\nexample:\n  toad connect ws://localhost:8001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connect.add_argument("url", metavar="URL", help="the server, like ws://localhost:8001 or wss://example.com/game")
    connect.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra HTTP header for the opening handshake (repeat for more)",
    )
    connect.add_argument(
        "-s",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="a subprotocol to offer the server (repeat for more)",
    )
    connect.set_defaults(command="connect", run=_connect, subparser=connect)

    echo = commands.add_parser(
        "echo",
        help="run a server that sends every message back (to try a client against)",
        description=(
            "Run a WebSocket server that sends every message back to whoever sent it,\n"
            "text as text and binary as binary. Ctrl-C stops it."
        ),
        epilog="example:\n  toad echo --port 9000   then, in another terminal: toad connect ws://localhost:9000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    echo.add_argument(
        "--host", default="localhost", help="where to listen (default: localhost; 0.0.0.0 for every network)"
    )
    echo.add_argument("--port", type=int, default=8001, help="the port (default: 8001; 0 picks a free one)")
    echo.set_defaults(command="echo", run=_echo, subparser=echo)
    return parser


# -- output ---------------------------------------------------------------------


def _line_by_line() -> None:
    # Each line goes out as soon as it is printed, so a program (or a test) that
    # reads toad's output through a pipe sees it at once; and a message that
    # the console cannot show is escaped instead of ending the program.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(line_buffering=True, errors="backslashreplace")
            except (ValueError, io.UnsupportedOperation):  # a stream that cannot change; print() flushes anyway
                pass


def _say(text: str, stream: TextIO | None = None) -> None:
    """Print one line (or a few) and flush it."""
    print(text, file=sys.stdout if stream is None else stream, flush=True)


# -- toad new -------------------------------------------------------------------


def template_roots() -> list[Path]:
    """The folders ``toad new`` looks in for templates, in order.

    First ``toad/templates``, where the wheel installs them; then, in a source
    checkout or an editable install (a ``pyproject.toml`` beside the ``toad``
    package), the repo's ``templates`` folder.
    """
    package = Path(__file__).resolve().parent
    roots = [package / "templates"]
    if (package.parent / "pyproject.toml").is_file():
        roots.append(package.parent / "templates")
    return roots


def find_templates(roots: Sequence[Path] | None = None) -> dict[str, Path]:
    """The templates in the first of ``roots`` (default :func:`template_roots`) that has any.

    Returns each template's name and folder, sorted by name. A template is a
    folder with a ``cookiecutter.json`` in it; ``{}`` when there is none.
    """
    for root in template_roots() if roots is None else roots:
        found = {path.parent.name: path.parent for path in sorted(root.glob("*/cookiecutter.json"))}
        if found:
            return found
    return {}


def _template_list(names: Sequence[str] | dict[str, Any]) -> str:
    width = max(map(len, names), default=0)
    return "\n".join(f"  {name:<{width}}  {TEMPLATES.get(name, '')}".rstrip() for name in names)


def _parse_settings(words: Sequence[str], variables: dict[str, Any], template: str) -> dict[str, str]:
    """The NAME and key=value words of ``toad new`` as cookiecutter's extra context."""
    settings: dict[str, str] = {}
    words = list(words)
    if words and "=" not in words[0]:
        settings["project_name"] = words.pop(0)
    for word in words:
        key, equals, value = word.partition("=")
        key = key.strip()
        if not equals or not key:
            raise CommandError(
                f"{word!r} is not a setting: write key=value, like project_slug=space-race "
                '(the name comes first, in quotes if it has spaces: toad new lobby-server "Space Race")',
                2,
            )
        if key in settings:
            raise CommandError(f"{key} is given twice: give each setting once (the NAME sets project_name)", 2)
        settings[key] = value
    public = [name for name in variables if not name.startswith("_")]
    for key in settings:
        if key not in variables:
            raise CommandError(f"the {template} template has no setting {key!r}: it has {', '.join(public)}", 2)
    return settings


def _import_cookiecutter() -> tuple[Any, Any]:
    """cookiecutter's ``cookiecutter()`` function and its ``exceptions`` module."""
    try:
        main_module = importlib.import_module("cookiecutter.main")
        exceptions = importlib.import_module("cookiecutter.exceptions")
    except ImportError as exc:
        broken = exc.name is not None and not exc.name.startswith("cookiecutter")
        detail = f" (it could not import {exc.name}, which it needs)" if broken else ""
        raise CommandError(f"toad new needs cookiecutter{detail}: {_NEW_EXTRA}") from None
    return main_module.cookiecutter, exceptions


def _new(args: argparse.Namespace) -> int:
    templates = find_templates()
    if not templates:
        raise CommandError(
            "this toad has no project templates: install toad from its wheel or repo, "
            f'not by copying the toad folder ({_NEW_EXTRA}, or pip install -e ".[new]" in the repo)'
        )
    listing = "templates:\n" + _template_list(templates)
    if args.template is None:
        raise CommandError('which template? like: toad new lobby-server "Space Race"', 2, listing)
    if args.template not in templates:
        raise CommandError(f"there is no template {args.template!r}: pick one of these", 2, listing)
    template = templates[args.template]
    try:
        variables = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"the {args.template} template cannot be read ({exc}): reinstall toad") from None
    settings = _parse_settings(args.words, variables, args.template)
    cookiecutter, exceptions = _import_cookiecutter()
    # cookiecutter logs each failure with a traceback (its own command line sets up
    # logging to show them); toad says what went wrong in one line instead.
    quiet = logging.getLogger("cookiecutter")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    try:
        project = Path(
            cookiecutter(
                str(template),
                no_input=args.no_input,
                extra_context=settings,
                output_dir=args.output_dir,
                overwrite_if_exists=args.overwrite,
            )
        )
    except exceptions.OutputDirExistsException as exc:
        where = re.search(r'"(.*)"', str(exc))
        folder = where.group(1) if where else "the project folder"
        if where and Path(folder).resolve() == Path(args.output_dir).resolve():
            raise CommandError(
                "the project's folder name came out empty: give a name with letters or digits in it, "
                "or a project_slug=my-game"
            ) from None
        raise CommandError(
            f"{folder} already exists: give the project another name, or add --overwrite to write into it"
        ) from None
    except exceptions.FailedHookException:
        # The hook printed its own reason above; cookiecutter removed what it had created.
        raise CommandError(
            f"the {args.template} template refused these settings: see its message above, "
            "change that setting and try again (nothing was created)"
        ) from None
    except EOFError:
        raise CommandError("no answers to the template's questions: add --no-input to take the defaults") from None
    except (exceptions.CookiecutterException, ValueError, OSError) as exc:
        # ValueError: an answer that is not one of a question's choices.
        raise CommandError(f"the {args.template} template failed: {_lower_first(str(exc))}") from None
    _say(f"created {project.name} from the {args.template} template in {_shown_path(project)}")
    _say("next:")
    for step in _next_steps(project):
        _say(f"  {step}")
    return 0


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _quoted(word: str) -> str:
    """``word`` as the user's shell wants it typed."""
    if os.name == "nt":
        return subprocess.list2cmdline([word])
    return shlex.quote(word)


def _next_steps(project: Path) -> list[str]:
    """What to type to run a project just rendered: cd, install, run."""
    steps = [f"cd {_quoted(_shown_path(project))}"]
    # The package is the folder that has a __main__.py: what `python -m` runs.
    packages = sorted(main.parent.name for main in project.glob("*/__main__.py"))
    if len(packages) == 1:
        steps.append(f"python -m {packages[0]}")
    if (project / "README.md").is_file():
        steps.append("then read README.md")
    return steps


# -- toad connect -----------------------------------------------------------------


def _parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise CommandError(f"{text!r} is not a header: write it as 'Name: value', like --header 'Cookie: id=42'", 2)
    return name.strip(), value.strip()


def _read_lines(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    """Put each line read from ``stream`` into ``lines`` (without its line ending), then ``None``.

    Runs on a helper thread. It reads the raw bytes under ``stream`` when it
    can: a thread blocked in a buffered read holds the buffer's lock, and
    Python's exit may need that lock.
    """
    try:
        if stream is None:
            return
        raw: BinaryIO | None = getattr(getattr(stream, "buffer", None), "raw", None)
        if raw is None:
            for line in stream:
                lines.put(line.removesuffix("\n").removesuffix("\r"))
            return
        decoder = codecs.getincrementaldecoder(getattr(stream, "encoding", None) or "utf-8")(errors="replace")
        pending = ""
        while True:
            chunk = raw.read(65536)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                lines.put(line.removesuffix("\r"))
        pending += decoder.decode(b"", final=True)
        if pending:
            lines.put(pending.removesuffix("\r"))
    except (OSError, ValueError):  # stdin closed under us: the same as its end
        pass
    finally:
        lines.put(None)


class _Session:
    """One ``toad connect`` session: the lines typed, the messages shown."""

    def __init__(self, conn: toad.Connection) -> None:
        self.conn = conn
        self.closing = False
        self.failed = False
        conn.onmessage(self.show)
        conn.onerror(self.error)
        conn.onclose(self.closed)

    def show(self, message: str | bytes) -> None:
        """Print a message that arrived: ``< text``, or ``< [binary N bytes] hex``."""
        if isinstance(message, str):
            _say(f"< {message}")
        else:
            more = "..." if len(message) > _HEX_SHOWN else ""
            _say(f"< [binary {len(message)} bytes] {message[:_HEX_SHOWN].hex()}{more}")

    def error(self, exc: Exception) -> None:
        """The connection broke (lost, or a protocol error): say so; the exit status will be 1."""
        self.failed = True
        _say(f"toad connect: error: {exc}", sys.stderr)

    def closed(self) -> None:
        """The connection is closed: say with which code."""
        reason = f" {self.conn.close_reason}" if self.conn.close_reason else ""
        _say(f"closed: {self.conn.close_code}{reason}")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start closing; the loop ends once the server has answered (or close_timeout passed)."""
        try:
            self.conn.close(code, reason)
        except toad.InvalidCloseCode as exc:
            _say(f"not closed: {exc}", sys.stderr)
            return
        self.closing = True

    def send(self, message: str | bytes) -> None:
        """Send a message, or say why it was not sent."""
        if not self.conn.send(message):
            _say("not sent: the connection is closing", sys.stderr)

    def typed(self, line: str) -> None:
        """Do what a line typed asks: a /command, or send it as a text message."""
        if not line.startswith("/") or line.startswith("//"):
            self.send(line[1:] if line.startswith("//") else line)
            return
        command, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if command == "binary":
            try:
                self.send(bytes.fromhex(rest))
            except ValueError:
                _say(f"not sent: {rest!r} is not hex: write two digits per byte, like /binary 00ff10", sys.stderr)
        elif command == "close":
            code_text, _, reason = rest.partition(" ")
            if not code_text:
                self.close()
            elif code_text.isdigit():
                self.close(int(code_text), reason.strip())
            else:
                _say(f"not closed: {code_text!r} is not a close code: write a number, like /close 4000 bye", sys.stderr)
        elif command == "quit":
            self.close()
        elif command == "help":
            _say(_CONNECT_HELP)
        else:
            _say(f"unknown command /{command}: /help lists them; start with // to send a line that starts with /")

    def run(self, lines: queue.Queue[str | None]) -> int:
        """Poll the connection and the lines typed until the connection is closed; the exit status."""
        try:
            while self.pump():
                while not self.closing:
                    try:
                        line = lines.get_nowait()
                    except queue.Empty:
                        break
                    if line is None:  # the end of stdin: Ctrl-D, or the end of a pipe
                        self.close()
                    else:
                        self.typed(line)
        except KeyboardInterrupt:
            # Ctrl-C is how people leave a chat tool: close cleanly; a second Ctrl-C leaves at once.
            if not self.closing:
                self.close()
            while self.pump():
                pass
        return 1 if self.failed or self.conn.close_code == toad.CloseCode.ABNORMAL_CLOSURE else 0

    def pump(self) -> bool:
        """Run the callbacks for what arrived, wait a moment for more; whether the connection is still there.

        Not ``isopen()``: that turns false as soon as this program calls
        ``close()``, and the closing handshake, with its ``onclose``, comes later.
        """
        conn = self.conn
        conn.poll()
        if conn.close_code is not None:  # onclose has run
            return False
        if conn.wait_closed(0):  # the network is done: everything it had is in the queue, poll once more
            conn.poll()
            return False
        conn.wait_events(_TICK)
        return True


def _connect(args: argparse.Namespace) -> int:
    headers = [_parse_header(text) for text in args.header]
    try:
        conn = toad.Connection(args.url, headers=headers, subprotocols=args.subprotocol)
    except toad.UsageError as exc:
        raise CommandError(str(exc), 2) from None
    session = _Session(conn)
    try:
        conn.open(block=False)
    except toad.ConnectionFailed as exc:
        raise CommandError(str(exc)) from None
    chosen = f" (subprotocol {conn.subprotocol})" if conn.subprotocol else ""
    _say(f"connected to {args.url}{chosen}: type a message and press Enter, /help for commands")
    lines: queue.Queue[str | None] = queue.Queue()
    # A daemon thread: a read from a terminal cannot be interrupted, and must not keep toad from exiting.
    threading.Thread(target=_read_lines, args=(sys.stdin, lines), name="toad-stdin", daemon=True).start()
    return session.run(lines)


# -- toad echo --------------------------------------------------------------------


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _echo(args: argparse.Namespace) -> int:
    server = toad.Server()

    # server.clients lists a client from its onopen until its onclose has run, both included.
    @server.onopen
    def opened(client: toad.Client) -> None:
        count = len(server.clients)
        _say(f"+ client {client.id} connected from {_address(client.address)} ({count} connected)")

    @server.onmessage
    def echo(client: toad.Client, message: str | bytes) -> None:
        client.send(message)

    @server.onclose
    def closed(client: toad.Client) -> None:
        reason = f" {client.close_reason}" if client.close_reason else ""
        _say(f"- client {client.id} left: {client.close_code}{reason} ({len(server.clients) - 1} connected)")

    try:
        server.start(args.host, args.port, block=False)
    except toad.UsageError as exc:
        raise CommandError(str(exc), 2) from None
    except toad.NetworkError as exc:
        raise CommandError(str(exc)) from None
    host = args.host or "0.0.0.0"
    host = f"[{host}]" if ":" in host else host
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        # SIGTERM (kill, a process manager) stops the server as Ctrl-C does: clients get 1001.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            _say(f"echo server on ws://{host}:{server.port} \N{EM DASH} Ctrl-C stops")
            while True:
                server.wait_events(0.5)  # short: on Windows only a return from the wait lets Ctrl-C in
                server.poll()
        except KeyboardInterrupt:
            pass
        count = len(server.clients)
        _say(f"stopping: closing {count} connection{'' if count == 1 else 's'} with 1001")
        server.stop()
    finally:
        if on_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0

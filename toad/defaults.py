"""The seed's module-level API: one-line calls on a default server and a default connection.

``toad.start_server()`` creates a :class:`~toad.Server` and ``toad.open()`` a
:class:`~toad.Connection`; every other function here forwards to one of them.
The module-level decorators register callbacks for whichever default the
program starts. A program that needs both a server and a client, or several
of either, creates the objects itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .client import Connection
from .endpoint import CLOSE, ERROR, KINDS, MESSAGE, OPEN, Event
from .errors import AmbiguousCall, NotConnected, UsageError
from .frames import CloseCode
from .server import Client, Server

__all__ = [
    "broadcast",
    "clients",
    "close",
    "closes",
    "default_connection",
    "default_server",
    "isopen",
    "messages",
    "onclose",
    "onerror",
    "onmessage",
    "onopen",
    "open",
    "opens",
    "poll",
    "send",
    "start_server",
    "stop_server",
    "wait_events",
]

F = TypeVar("F", bound=Callable[..., Any])

_callbacks: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in KINDS}
_server: Server | None = None
_connection: Connection | None = None

_BOTH = (
    "toad.{name}() could mean the default server or the default connection, and this program has both: "
    "create them as objects instead (server = toad.Server(), conn = toad.Connection()) and call "
    "server.{name}() or conn.{name}()"
)


def _active(endpoint: Server | Connection | None) -> bool:
    if endpoint is None:
        return False
    if isinstance(endpoint, Server):
        return endpoint.running or bool(endpoint._queue)
    return endpoint.isopen() or bool(endpoint._queue)


def _register(kind: str, fn: F) -> F:
    targets = [e for e in (_server, _connection) if e is not None and _active(e)]
    if len(targets) == 2:
        raise AmbiguousCall(_BOTH.format(name=f"on{kind}"))
    for endpoint in targets:
        endpoint._check_signature(kind, fn)
    if not callable(fn):
        raise UsageError(f"@toad.on{kind} goes above a function definition, not {fn!r}")
    _callbacks[kind].append(fn)
    return fn


def onopen(fn: F) -> F:
    """Run ``fn`` when a connection opens: ``fn(client)`` on a server, ``fn()`` on a client.

    On a server, a value ``fn`` returns replaces the client in later callbacks
    and in polling results (the seed's Player pattern).
    """
    return _register(OPEN, fn)


def onmessage(fn: F) -> F:
    """Run ``fn`` for each message: ``fn(client, message)`` on a server, ``fn(message)`` on a client.

    Returning ``False`` closes the connection.
    """
    return _register(MESSAGE, fn)


def onerror(fn: F) -> F:
    """Run ``fn`` on an error: ``fn(client, exception)`` on a server, ``fn(exception)`` on a client."""
    return _register(ERROR, fn)


def onclose(fn: F) -> F:
    """Run ``fn`` when a connection closes: ``fn(client)`` on a server, ``fn()`` on a client."""
    return _register(CLOSE, fn)


# -- the server ------------------------------------------------------------------


def start_server(host: str = "localhost", port: int = 8001, block: bool = True, **options: Any) -> None:
    """Start the default server; see :meth:`toad.Server.start` and :class:`toad.Server` for options."""
    global _server
    if _server is not None and _server.running:
        raise UsageError(
            f"the default server is already running on port {_server.port}: call toad.stop_server() first, "
            "or create more servers with toad.Server()"
        )
    if _active(_connection) and any(_callbacks.values()):
        raise AmbiguousCall(_BOTH.format(name="start_server"))
    server = Server(**options)
    server._share_callbacks(_callbacks)
    _server = server
    server.start(host, port, block)


def stop_server() -> None:
    """Stop the default server: every client is closed with 1001, then it returns."""
    if _server is not None:
        _server.stop()


def default_server() -> Server:
    """The :class:`~toad.Server` that ``toad.start_server()`` started."""
    if _server is None:
        raise NotConnected("there is no default server yet: call toad.start_server() first")
    return _server


def opens() -> list[Any]:
    """The default server's clients (or players) that connected since the last call."""
    return default_server().opens()


def closes() -> list[Any]:
    """The default server's clients (or players) that left since the last call."""
    return default_server().closes()


def clients() -> list[Client]:
    """The default server's open clients."""
    return default_server().clients


def broadcast(message: str | bytes, to: Iterable[Any] | None = None, exclude: Any = None) -> int:
    """Send a message to every client of the default server (or those in ``to``)."""
    return default_server().broadcast(message, to, exclude)


# -- the client ------------------------------------------------------------------


def open(url: str, block: bool = True, **options: Any) -> None:
    """Connect the default connection to ``url``; see :meth:`toad.Connection.open`.

    ``options`` are :class:`toad.Connection`'s, ``reconnect=True`` (with
    ``reconnect_delay``, ``reconnect_max_delay``, ``reconnect_attempts``)
    among them.
    """
    global _connection
    if _connection is not None and _connection._loop is not None and not _connection._loop.stopped.is_set():
        raise UsageError(
            "the default connection is already open: call toad.close() first, "
            "or create more connections with toad.Connection()"
        )
    if _active(_server) and any(_callbacks.values()):
        raise AmbiguousCall(_BOTH.format(name="open"))
    connection = Connection(url, **options)
    connection._share_callbacks(_callbacks)
    _connection = connection
    connection.open(url, block)


def default_connection() -> Connection:
    """The :class:`~toad.Connection` that ``toad.open()`` made."""
    if _connection is None:
        raise NotConnected("there is no default connection yet: call toad.open(url) first")
    return _connection


def isopen() -> bool:
    """Whether the default connection is open (or has messages the game has not read)."""
    return _connection is not None and _connection.isopen()


def send(message: str | bytes) -> bool:
    """Send a message on the default connection; never blocks."""
    if _connection is None:
        raise NotConnected(
            "toad.send() sends on the connection toad.open() made: call toad.open(url) first "
            "(a server sends with client.send() or toad.broadcast())"
        )
    return _connection.send(message)


def close(code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
    """Close the default connection; never blocks."""
    if _connection is not None:
        _connection.close(code, reason)


# -- both --------------------------------------------------------------------------


def _the_default(name: str) -> Server | Connection:
    server = _server if _active(_server) else None
    connection = _connection if _active(_connection) else None
    if server is not None and connection is not None:
        raise AmbiguousCall(_BOTH.format(name=name))
    endpoint = server or connection or _server or _connection
    if endpoint is None:
        raise NotConnected(
            f"toad.{name}() has nothing to read yet: start a server with toad.start_server() "
            "or connect with toad.open(url) first"
        )
    return endpoint


def messages() -> list[Any]:
    """Messages since the last call: ``(client, message)`` pairs on a server, messages on a client."""
    return _the_default("messages").messages()


def poll(limit: int | None = None) -> list[Event]:
    """Run the callbacks of the default server and connection for what arrived; never blocks."""
    events: list[Event] = []
    for endpoint in (_server, _connection):
        if endpoint is not None:
            events.extend(endpoint.poll(limit))
    return events


def wait_events(timeout: float | None = None) -> bool:
    """Block until the default server or connection has an event for :func:`poll`."""
    return _the_default("wait_events").wait_events(timeout)

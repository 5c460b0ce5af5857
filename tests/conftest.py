"""Fixtures shared by the test modules: real peers on 127.0.0.1 and free ports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_sync_connect
from websockets.sync.server import Server as WsServer
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_sync_serve

import toad

# -- interop: the websockets library as the peer ---------------------------------------


@pytest.fixture
def toad_server() -> Iterator[Callable[..., toad.Server]]:
    """Start ``toad.Server(**options)`` on 127.0.0.1, a free port, block=False; stopped at teardown.

    Register callbacks after starting: with block=False they only run when the
    test calls ``server.poll()`` (or a polling call).
    """
    servers: list[toad.Server] = []

    def start(**options: Any) -> toad.Server:
        server = toad.Server(**options)
        server.start("127.0.0.1", 0, block=False)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def ws_server() -> Iterator[Callable[..., str]]:
    """Run a ``websockets`` sync server with ``handler`` in a thread; returns its ``ws://`` URL.

    ``options`` go to ``websockets.sync.server.serve`` (``max_size=None`` unless
    given). A handler that raises anything but ``ConnectionClosed`` (a failed
    assertion, say) fails the test at teardown, so checks may live in handlers.
    """
    servers: list[tuple[WsServer, threading.Thread]] = []
    failures: list[BaseException] = []

    def start(handler: Callable[[ServerConnection], None], **options: Any) -> str:
        def guarded(ws: ServerConnection) -> None:
            try:
                handler(ws)
            except ConnectionClosed:
                pass
            except BaseException as exc:
                failures.append(exc)
                raise

        options.setdefault("max_size", None)
        server = ws_sync_serve(guarded, "127.0.0.1", 0, **options)
        thread = threading.Thread(target=server.serve_forever, name="websockets-server", daemon=True)
        thread.start()
        servers.append((server, thread))
        port = server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(5)
    if failures:
        raise failures[0]


@pytest.fixture
def ws_connect() -> Iterator[Callable[..., ClientConnection]]:
    """Connect a ``websockets`` sync client to a toad.Server (or a URL); closed at teardown.

    ``options`` go to ``websockets.sync.client.connect`` (``max_size=None`` and
    ``open_timeout=5`` unless given).
    """
    with ExitStack() as stack:

        def connect(target: toad.Server | str, path: str = "/", **options: Any) -> ClientConnection:
            url = target if isinstance(target, str) else f"ws://127.0.0.1:{target.port}{path}"
            options.setdefault("max_size", None)
            options.setdefault("open_timeout", 5)
            # As a context manager: what websockets >= 17.1 asks for, and what every version supports.
            return stack.enter_context(ws_sync_connect(url, **options))

        yield connect


@pytest.fixture
def toad_connect() -> Iterator[Callable[..., toad.Connection]]:
    """Open ``toad.Connection(url, **options)`` with block=False; closed at teardown."""
    connections: list[toad.Connection] = []

    def connect(url: str, **options: Any) -> toad.Connection:
        conn = toad.Connection(url, **options)
        connections.append(conn)
        conn.open(block=False)
        return conn

    yield connect
    for conn in connections:
        conn.close()
        conn.wait_closed(5)

"""The server: :class:`Server` accepts connections, :class:`Client` is one of them."""

from __future__ import annotations

import errno
import itertools
import logging
import socket
import ssl as ssl_module
import sys
import threading
from collections.abc import Iterable, Iterator, KeysView, Sequence, ValuesView
from typing import Any, ClassVar

from .endpoint import CLOSE, ERROR, MESSAGE, OPEN, Endpoint, Event
from .errors import AddressInUse, InvalidAddress, UsageError
from .frames import CloseCode
from .handshake import Headers
from .network import Channel, Limits, Loop
from .protocol import DEFAULT_MAX_MESSAGE_SIZE, SERVER, Closed, Opened, Protocol, State, encode_message
from .urls import parse_host, parse_port

__all__ = ["Client", "Server"]

logger = logging.getLogger("toad")

_ids = itertools.count(1)


class Client:
    """One open connection to a :class:`Server`, as its callbacks see it.

    ``id`` is unique in the program. ``player`` is what ``onopen`` returned
    (the client itself when nothing was returned). ``path`` and ``headers``
    come from the client's opening handshake; ``close_code`` and
    ``close_reason`` are set once the connection is closed.
    """

    def __init__(self, server: Server, channel: Channel, opened: Opened) -> None:
        self.id: int = next(_ids)
        self.server = server
        self._player: Any = None  # None: the client stands for itself (no cycle to itself)
        self._channel = channel
        request = opened.request
        self.path: str = request.path if request is not None else "/"
        self.headers: Headers = request.headers if request is not None else Headers()
        self.subprotocol: str | None = opened.subprotocol
        self.address: Any = channel.address
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._closed_by_game = False

    @property
    def player(self) -> Any:
        """What ``onopen`` returned, or this client when it returned nothing."""
        return self if self._player is None else self._player

    @player.setter
    def player(self, value: Any) -> None:
        """Let another object stand for this client from now on (a player who came back, say).

        Later callbacks get ``value``, and ``server.client_of(value)`` and
        ``broadcast(to=...)`` find this client through it.
        """
        by_player = self.server._by_player
        if by_player.get(id(self._player)) is self:
            del by_player[id(self._player)]
        self._player = None if value is self else value
        if self._player is not None and self.id in self.server._clients:
            by_player[id(self._player)] = self

    def send(self, message: str | bytes) -> bool:
        """Send a message: ``str`` as a text frame, ``bytes`` as a binary frame.

        Never blocks: what the network cannot take yet waits in a buffer.
        Returns ``False`` (and sends nothing) once the connection is closing.
        """
        return self._channel.send(message)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start closing the connection; ``onclose`` follows when it is closed. Never blocks.

        After this, no more ``onmessage`` calls arrive for this client. A code
        that cannot be sent raises :class:`~toad.InvalidCloseCode`.
        """
        self._channel.close(code, reason)
        self._closed_by_game = True

    @property
    def is_open(self) -> bool:
        """Whether messages can still be sent to this client."""
        return self._channel.protocol.state is State.OPEN and not self._channel.overflowed

    def __repr__(self) -> str:
        state = "open" if self.is_open else f"closed {self.close_code}"
        return f"<toad.Client {self.id} {self.address!r} {state}>"


class Server(Endpoint):
    """A WebSocket server; create as many as you like, on different ports.

    Options (all have safe defaults for a game on the internet):

    - ``max_message_size``: bytes in one message, fragments included (default
      1 MiB); a larger message closes that connection with 1009. ``None``
      lifts the limit.
    - ``max_header_size``: bytes in the opening handshake (default 8192).
    - ``handshake_timeout``: seconds a client has to finish the opening
      handshake (default 10).
    - ``ping_interval`` / ``ping_timeout``: after ``ping_interval`` seconds
      of silence toad sends a Ping; no answer within ``ping_timeout`` drops
      the connection (defaults 20 and 20; ``None`` turns keepalive off).
    - ``close_timeout``: seconds to wait for the peer's answer to a Close
      frame before dropping the connection (default 5).
    - ``max_write_buffer``: bytes that may wait to be sent to one client
      (default 4 MiB). A client already that far behind when another
      message is sent to it has stopped reading, and is dropped, so it cannot
      hold the server's memory or slow the others. One message larger than
      this still goes out to a client that reads.
    - ``max_queue`` / ``max_queue_size``: messages (default 4096) and bytes
      (default 4 MiB) from one client that may wait for the game to poll.
      Past either, toad stops reading that client until the game catches
      up: TCP slows that client down, nothing is lost, the others go on.
    - ``max_connections``: connections served at once (default: no limit
      but the system's); one more is answered 503 and closed.
    - ``max_messages_per_second``: messages one client may send per second,
      on average (default ``None``: no limit). A client may send two
      seconds' worth at once (a burst after a lag spike); past that, toad
      fails its connection with 1008 (policy violation), the game gets
      ``onerror`` with :class:`~toad.TooManyMessages` and then ``onclose``,
      and the others go on. Set it a few times above the rate your game
      client really sends.
    - ``subprotocols``: the subprotocols this server speaks; the first one
      the client offers that is in this list is chosen (RFC 6455 section 4.2.2).
    - ``origins``: the Origin header values browsers may connect from
      (``None``, the default, allows any).
    - ``ssl``: an :class:`ssl.SSLContext` to serve ``wss://``.
    """

    _ROLE = "server"
    _SIGNATURES: ClassVar[dict[str, tuple[int, str]]] = {
        OPEN: (1, "onopen(client)"),
        MESSAGE: (2, "onmessage(client, message)"),
        ERROR: (2, "onerror(client, exception)"),
        CLOSE: (1, "onclose(client)"),
    }

    def __init__(
        self,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_header_size: int = 8192,
        handshake_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 5.0,
        max_write_buffer: int = 4 << 20,
        max_queue: int = 4096,
        max_queue_size: int = 4 << 20,
        max_connections: int | None = None,
        max_messages_per_second: float | None = None,
        subprotocols: Sequence[str] = (),
        origins: Sequence[str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        super().__init__(max_queue, max_queue_size)
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise UsageError(
                "ssl must be an ssl.SSLContext with your certificate loaded (see the README's wss section)"
            )
        if max_messages_per_second is not None and (
            isinstance(max_messages_per_second, bool)
            or not isinstance(max_messages_per_second, (int, float))
            or not max_messages_per_second > 0
        ):
            raise UsageError(
                f"max_messages_per_second must be a number above 0 (or None for no limit), "
                f"not {max_messages_per_second!r}"
            )
        self.max_message_size = max_message_size
        self.max_header_size = max_header_size
        self.subprotocols = tuple(subprotocols)
        self.origins = tuple(origins) if origins is not None else None
        self.ssl = ssl
        self.limits = Limits(
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_write_buffer=max_write_buffer,
            max_connections=max_connections,
            max_messages_per_second=max_messages_per_second,
        )
        self.host = ""
        #: The port the server listens on (the real one when started with port=0).
        self.port = 0
        self._clients: dict[int, Client] = {}
        self._by_player: dict[int, Client] = {}
        # Players (not Clients) that left during the latest poll, by id, with their Client.
        self._left: dict[int, tuple[Any, Client]] = {}

    # -- starting and stopping -------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening (between ``start()`` and ``stop()``)."""
        return self._loop is not None and not self._loop.stopping and not self._loop.stopped.is_set()

    def start(self, host: str = "localhost", port: int = 8001, block: bool = True) -> None:
        """Listen on ``host`` and ``port`` and serve.

        ``host`` may be a name, an address, ``""`` or ``"0.0.0.0"`` for every
        interface, or the seed's ``"http://localhost"``. ``port=0`` picks a
        free port (read it from :attr:`port`).

        With ``block=True`` the server runs on this thread, running callbacks
        as events arrive, and returns after :meth:`stop` (or Ctrl-C, which
        closes every connection with 1001 and raises ``KeyboardInterrupt``).
        With ``block=False`` it returns at once: the network runs on a
        background thread and callbacks run when this thread calls
        :meth:`poll` or a polling call.
        """
        if self._loop is not None and not self._loop.stopped.is_set():
            raise UsageError(
                f"this server is already running on port {self.port}: call stop() first, "
                "or create another toad.Server() for another port"
            )
        host = parse_host(host)
        port = parse_port(port)
        loop = Loop(self, self.limits)
        try:
            listeners = _listen(host, port)
        except BaseException:
            loop.release()
            raise
        loop.on_accept = self._accept
        for sock in listeners:
            loop.add_listener(sock)
        self.host = host
        self.port = listeners[0].getsockname()[1]
        self._loop = loop
        self._clients = {}
        self._by_player = {}
        self._left = {}
        logger.info("toad server listening on port %d", self.port)
        if block:
            self._inline = True
            try:
                loop.run()
            finally:
                self._inline = False
        else:
            loop.start_thread(f"toad-server-{self.port}")

    def stop(self) -> None:
        """Close every connection with 1001 (going away), stop listening, and return.

        Waits for the closing handshakes, at most ``close_timeout`` seconds, and
        runs the ``onclose`` callbacks (with ``block=False``, on this thread).
        The port is free again when it returns. Called from a callback of a
        blocking server, it returns at once and ``start()`` returns when done.
        """
        loop = self._loop
        if loop is None or loop.stopped.is_set():
            return
        loop.stop(CloseCode.GOING_AWAY, "the server is shutting down")
        if threading.get_ident() == loop.thread_id:
            return
        loop.stopped.wait(self.limits.close_timeout + 5.0)
        if loop.thread is not None:
            loop.thread.join(1.0)
        self._ready.set()
        if not self._inline:
            self._pump()

    # -- clients ---------------------------------------------------------------

    @property
    def clients(self) -> list[Client]:
        """The clients whose ``onopen`` has run and whose ``onclose`` has not."""
        return list(self._clients.values())

    @property
    def players(self) -> list[Any]:
        """What ``onopen`` returned for each client in :attr:`clients` (the client if nothing)."""
        return [client.player for client in self._clients.values()]

    def client_of(self, player: Any) -> Client | None:
        """The :class:`Client` behind a player object, or ``None`` if it has left.

        A player that left is still found until the next poll, so that
        ``server.client_of(player).close_code`` works for the players that
        ``closes()`` or ``poll()`` just handed over.
        """
        if isinstance(player, Client):
            return player
        client = self._by_player.get(id(player))
        if client is None:
            left = self._left.get(id(player))
            if left is not None and left[0] is player:
                return left[1]
        return client

    def broadcast(
        self,
        message: str | bytes,
        to: Iterable[Any] | None = None,
        exclude: Iterable[Any] | Any = None,
    ) -> int:
        """Send one message to every open client, or to those in ``to``; never blocks.

        ``to`` and ``exclude`` take a client or player, or a list, set, tuple
        or generator of them: clients or the players ``onopen`` returned
        (players that already left are skipped). The frame is encoded once
        for everyone. Returns how many clients it was sent to.
        """
        frame = encode_message(message)
        if to is None:
            clients: Iterable[Client | None] = list(self._clients.values())
        else:
            clients = [self.client_of(p) for p in _group(to)]
        if exclude is None:
            channels = [client._channel for client in clients if client is not None]
        else:
            skip = {c.id for c in map(self.client_of, _group(exclude)) if c is not None}
            channels = [client._channel for client in clients if client is not None and client.id not in skip]
        loop = self._loop
        if loop is None:
            return 0
        return loop.send_frame_to_all(channels, frame)

    # -- polling ---------------------------------------------------------------

    def opens(self) -> list[Any]:
        """The clients (or players) that connected since the last call; never blocks."""
        return self._take(OPEN)

    def messages(self) -> list[tuple[Any, str | bytes]]:
        """``(client, message)`` pairs that arrived since the last call; never blocks."""
        return self._take(MESSAGE)

    def closes(self) -> list[Any]:
        """The clients (or players) that left since the last call; never blocks."""
        return self._take(CLOSE)

    # -- the loop's side ---------------------------------------------------------

    def _accept(self, sock: socket.socket, address: Any) -> Channel:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl is not None:
            sock = self.ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        protocol = Protocol(
            SERVER,
            max_message_size=self.max_message_size,
            max_header_size=self.max_header_size,
            subprotocols=self.subprotocols,
            origins=self.origins,
        )
        assert self._loop is not None
        return Channel(self._loop, sock, protocol, address)

    def _opened(self, channel: Channel, event: Opened) -> None:
        channel.user = Client(self, channel, event)
        self._emit(OPEN, channel, None)

    # -- the game's side of events -----------------------------------------------

    def _dispatch(self, kind: str, channel: Channel, data: Any, record: bool) -> Event | None:
        client: Client = channel.user
        player: Any
        if kind is MESSAGE:
            if client._closed_by_game:
                return None
            player = client.player
            if self._run_onmessage(player, (player, data)):
                client.close()
            if not record:
                return None  # block=True: nobody polls, so no Event to build
            self._lists[MESSAGE].append((player, data))
        elif kind is OPEN:
            self._clients[client.id] = client
            player = client
            for fn in self._callbacks[OPEN]:
                try:
                    result = fn(player)
                except Exception as exc:
                    self._callback_failed(OPEN, fn, player, exc)
                    continue
                if result is not None:
                    # The seed's tip: what onopen returns stands for the client from now on.
                    player = result
            client.player = player  # the setter files it for client_of()
            if record:
                self._lists[OPEN].append(player)
        elif kind is CLOSE:
            closed: Closed = data
            client.close_code = closed.code
            client.close_reason = closed.reason
            player = client.player
            self._run_callbacks(CLOSE, player, (player,))
            self._clients.pop(client.id, None)
            # The last event of this connection: let go of the client, so the
            # channel and the client are freed by reference counting, not by
            # the garbage collector (the client keeps its channel for send()).
            channel.user = None
            # Only if the player is still this client's: another connection may have taken it over.
            if self._by_player.get(id(player)) is client:
                del self._by_player[id(player)]
                if record:
                    self._left[id(player)] = (player, client)  # no poll clears it with block=True
            if record:
                self._lists[CLOSE].append(player)
            data = (closed.code, closed.reason)
        else:
            player = client.player
            self._run_callbacks(ERROR, player, (player, data))
        return Event(kind, self, client.player, data) if record else None

    def _deliver_error(self, who: Any, exc: BaseException) -> None:
        self._run_callbacks(ERROR, who, (who, exc))

    def _pump(self, limit: int | None = None) -> list[Event]:
        if not self._pumping:
            # Players that left are forgotten one poll later: client_of() finds them
            # for what the last poll handed over, and no list grows for ever.
            self._left.clear()
        return super()._pump(limit)

    def __repr__(self) -> str:
        state = f"listening on port {self.port}" if self.running else "stopped"
        return f"<toad.Server {state}, {len(self._clients)} clients>"


def _group(players: Any) -> Iterable[Any]:
    """``to=``/``exclude=`` take one player or a collection of them."""
    if isinstance(players, (list, tuple, set, frozenset, KeysView, ValuesView, Iterator)):
        return players
    return (players,)


def _listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address ``host`` names; the first one decides the port."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidAddress(
            f"cannot listen on host {host!r} ({exc.strerror}): use 'localhost', '0.0.0.0' or an address of this machine"
        ) from None
    seen = set()
    sockets: list[socket.socket] = []
    for family, socktype, proto, _, address in infos:
        if (family, address[0]) in seen:
            continue
        seen.add((family, address[0]))
        if sockets:
            address = (address[0], sockets[0].getsockname()[1], *address[2:])
        sock = socket.socket(family, socktype, proto)
        try:
            if sys.platform != "win32":
                # So a restarted server can take its port back at once (TIME_WAIT).
                # Windows allows that by default, and its SO_REUSEADDR would let
                # another program bind the same port: leave it alone there.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            if sockets:
                logger.debug("cannot also listen on %s: %s", address, exc)
                continue
            for s in sockets:
                s.close()
            raise _bind_error(host, port, exc) from None
        sockets.append(sock)
    if not sockets:  # pragma: no cover - getaddrinfo returned nothing usable
        raise InvalidAddress(f"cannot listen on host {host!r}: it has no usable address")
    return sockets


def _bind_error(host: str, port: int, exc: OSError) -> Exception:
    if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
        return AddressInUse(
            f"port {port} is already in use: stop the other program (or server) using it, or pick another port"
        )
    if exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", -1)):
        return InvalidAddress(f"no permission to listen on port {port}: use a port from 1024 to 65535")
    if exc.errno in (errno.EADDRNOTAVAIL, getattr(errno, "WSAEADDRNOTAVAIL", -1)):
        return InvalidAddress(
            f"{host!r} is not an address of this machine: use 'localhost', '0.0.0.0' or one of its addresses"
        )
    return InvalidAddress(f"cannot listen on {host or 'every interface'} port {port}: {exc.strerror or exc}")

"""The client side: :class:`Connection`, one connection to a WebSocket server."""

from __future__ import annotations

import itertools
import socket
import ssl as ssl_module
from collections.abc import Sequence
from time import monotonic
from typing import Any, ClassVar

from .endpoint import CLOSE, ERROR, MESSAGE, OPEN, Endpoint, Event
from .errors import ConnectionFailed, InvalidHandshake, NotConnected, UsageError
from .frames import CloseCode
from .network import Channel, Limits, Loop
from .protocol import CLIENT, DEFAULT_MAX_MESSAGE_SIZE, Closed, Opened, Protocol, State
from .protocol import Event as ProtocolEvent
from .urls import WebSocketURL, parse_url

__all__ = ["Connection"]

_ids = itertools.count(1)


class Connection(Endpoint):
    """A client connection to a WebSocket server; create as many as you like.

    Like the browser's ``WebSocket``: ``onopen``, ``onmessage``, ``onerror``
    and ``onclose`` callbacks, :meth:`send` and :meth:`close`. Polling works
    too: :meth:`messages` each frame, :meth:`isopen` to know when it ended.

    Options: ``subprotocols`` to offer, ``origin`` and extra ``headers`` for
    the handshake, ``ssl`` (an :class:`ssl.SSLContext` for ``wss://``; the
    system's default trust store when omitted), ``open_timeout`` (seconds to
    connect and finish the handshake, default 10), and ``max_message_size``,
    ``ping_interval``, ``ping_timeout``, ``close_timeout`` and
    ``max_write_buffer`` as for :class:`toad.Server`. ``max_queue`` and
    ``max_queue_size`` (messages and bytes waiting for the game before toad
    stops reading until it polls) default to 1,000,000 and 256 MiB: a game
    that stalls for a while on a loading screen still loses nothing.
    """

    _ROLE = "client connection"
    _SIGNATURES: ClassVar[dict[str, tuple[int, str]]] = {
        OPEN: (0, "onopen()"),
        MESSAGE: (1, "onmessage(message)"),
        ERROR: (1, "onerror(exception)"),
        CLOSE: (0, "onclose()"),
    }

    def __init__(
        self,
        url: str | None = None,
        *,
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        ssl: ssl_module.SSLContext | None = None,
        open_timeout: float = 10.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 5.0,
        max_write_buffer: int = 4 << 20,
        max_queue: int = 1_000_000,
        max_queue_size: int = 256 << 20,
    ) -> None:
        super().__init__(max_queue, max_queue_size)
        self.id: int = next(_ids)
        #: The URL given to the constructor or to :meth:`open`.
        self.url: str | None = url
        if url is not None:
            parse_url(url)  # a bad URL is reported here, at once
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise UsageError("ssl must be an ssl.SSLContext (or leave it out to use the system's certificates)")
        self.subprotocols = tuple(subprotocols)
        self.origin = origin
        self.extra_headers = tuple(headers)
        self.ssl = ssl
        self.open_timeout = open_timeout
        self.max_message_size = max_message_size
        self.limits = Limits(
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_write_buffer=max_write_buffer,
        )
        #: The subprotocol the server chose, once open.
        self.subprotocol: str | None = None
        #: The close code and reason, once closed (1006 when the connection was lost).
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._channel: Channel | None = None
        self._closed_by_game = False

    # -- opening ---------------------------------------------------------------

    def open(self, url: str | None = None, block: bool = True) -> None:
        """Connect to ``url`` (``ws://``, ``wss://``, or the seed's ``http://``) and run.

        Waits until the opening handshake is done (at most ``open_timeout``
        seconds) and raises :class:`~toad.ConnectionFailed`, with the reason,
        if it cannot. Then, with ``block=True``, runs the connection on this
        thread, running callbacks as events arrive, and returns once it is
        closed. With ``block=False`` it returns at once: the network runs on
        a background thread and callbacks run when this thread calls
        :meth:`poll` or :meth:`messages`.
        """
        if self._loop is not None and not self._loop.stopped.is_set():
            raise UsageError("this connection is already open: close() it first, or create another toad.Connection()")
        if url is None:
            url = self.url
            if url is None:
                raise UsageError("open() needs a URL, like open('ws://localhost:8001')")
        target = parse_url(url)
        self.url = url
        self._closed_by_game = False
        self.close_code = None
        self.close_reason = ""
        loop = Loop(self, self.limits)
        try:
            sock, protocol, events = self._connect(target)
        except BaseException:
            loop.release()
            raise
        loop.exit_when_empty = True
        channel = Channel(loop, sock, protocol, (target.host, target.port))
        channel.user = self
        loop.add_channel(channel)
        with channel.lock:  # answers to frames that came with the 101 (a Pong, a Close)
            channel._write(protocol.data_to_send())
        if protocol.state is State.CLOSED:
            channel._check_finished()
        self._loop = loop
        self._channel = channel
        self.subprotocol = protocol.subprotocol
        if block:
            self._inline = True
            try:
                self._on_events(channel, events)
                loop.run()
            finally:
                self._inline = False
        else:
            self._on_events(channel, events)
            loop.start_thread(f"toad-client-{self.id}")

    def _connect(self, target: WebSocketURL) -> tuple[socket.socket, Protocol, list[ProtocolEvent]]:
        # Blocking, on the caller's thread, bounded by open_timeout: the game
        # asked to connect and cannot do anything useful with it until then.
        deadline = monotonic() + self.open_timeout
        try:
            sock = socket.create_connection((target.host, target.port), timeout=self.open_timeout)
        except socket.gaierror:
            raise ConnectionFailed(
                f"cannot find the host {target.host!r}: check the URL's host name and your network"
            ) from None
        except ConnectionRefusedError:
            raise ConnectionFailed(
                f"nothing is listening at {target}: start the server first, or check the host and port"
            ) from None
        except TimeoutError:
            raise ConnectionFailed(
                f"connecting to {target} timed out after {self.open_timeout:g} seconds: is the server reachable?"
            ) from None
        except OSError as exc:
            raise ConnectionFailed(f"cannot connect to {target}: {exc.strerror or exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.secure:
                sock.settimeout(max(0.001, deadline - monotonic()))  # one open_timeout for all the steps
                context = self.ssl or ssl_module.create_default_context()
                try:
                    sock = context.wrap_socket(sock, server_hostname=target.host)
                except (ssl_module.SSLError, ssl_module.CertificateError) as exc:
                    raise ConnectionFailed(
                        f"the TLS handshake with {target} failed ({getattr(exc, 'reason', None) or exc}): "
                        "check that the server serves wss:// with a certificate this machine trusts"
                    ) from exc
            protocol = Protocol(CLIENT, max_message_size=self.max_message_size, subprotocols=self.subprotocols)
            protocol.connect(
                target.host,
                target.port,
                target.path,
                secure=target.secure,
                origin=self.origin,
                extra_headers=self.extra_headers,
            )
            sock.settimeout(max(0.001, deadline - monotonic()))
            sock.sendall(protocol.data_to_send())
            events: list[ProtocolEvent] = []
            while protocol.state is State.CONNECTING:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionFailed(
                        f"{target} closed the connection during the opening handshake: is it a WebSocket server?"
                    )
                events.extend(protocol.receive_data(data))
            # A server may close (or break the protocol) in the bytes right after its 101:
            # that connection did open, and open() hands the game its events.
            if protocol.state is State.CLOSED and not any(isinstance(e, Opened) for e in events):
                error = next((e.error for e in events if isinstance(e, Closed) and e.error), None)
                if isinstance(error, InvalidHandshake):
                    # "Refused" only when the server answered a status other than 101;
                    # a 101 that fails the checks, or no HTTP at all, is a broken answer.
                    response = protocol.response
                    if response is not None and response.status != 101:
                        raise ConnectionFailed(f"{target} refused the WebSocket handshake: {error}") from error
                    raise ConnectionFailed(f"{target} sent an invalid WebSocket handshake response: {error}") from error
                raise ConnectionFailed(f"{target} closed the connection during the opening handshake")
        except TimeoutError:
            sock.close()
            raise ConnectionFailed(
                f"the opening handshake with {target} timed out after {self.open_timeout:g} seconds"
            ) from None
        except ConnectionFailed:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise ConnectionFailed(f"the connection to {target} failed: {exc.strerror or exc}") from None
        sock.settimeout(None)
        return sock, protocol, events

    # -- using it --------------------------------------------------------------

    def isopen(self) -> bool:
        """Whether the connection is open, or has events the game has not been handed yet.

        It turns ``False`` once the game has been handed the close (by
        :meth:`poll` or :meth:`messages`, which also run ``onclose``), or at
        once when the game itself called :meth:`close`. So ``while
        conn.isopen(): for message in conn.messages(): ...`` sees every
        message, even those that arrived just before the server closed, and
        ``onclose`` has run when the loop ends.
        """
        channel = self._channel
        if channel is None or self._closed_by_game:
            return False
        if channel.protocol.state is State.OPEN and not channel.overflowed:
            return True
        return bool(self._queue) or (MESSAGE in self._asked and bool(self._lists[MESSAGE]))

    def send(self, message: str | bytes) -> bool:
        """Send a message: ``str`` as a text frame, ``bytes`` as a binary frame.

        Never blocks. Returns ``False`` (and sends nothing) once the
        connection is closing or closed.
        """
        channel = self._channel
        if channel is None:
            raise NotConnected("send() needs an open connection: call open(url) first")
        return channel.send(message)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; never blocks. ``onclose`` runs once it is done."""
        channel = self._channel
        if channel is None:
            return
        channel.close(code, reason)
        self._closed_by_game = True

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the connection is fully closed; returns whether it is."""
        loop = self._loop
        if loop is None:
            return True
        return loop.stopped.wait(timeout)

    def messages(self) -> list[str | bytes]:
        """The messages that arrived since the last call, in order; never blocks."""
        return self._take(MESSAGE)

    # -- the loop's side ---------------------------------------------------------

    def _opened(self, channel: Channel, event: Opened) -> None:
        self._emit(OPEN, channel, None)

    # -- the game's side ---------------------------------------------------------

    def _dispatch(self, kind: str, channel: Channel, data: Any, record: bool) -> Event | None:
        if kind is MESSAGE:
            if self._closed_by_game:
                return None
            if self._run_onmessage(None, (data,)):
                self.close()
            if not record:
                return None  # block=True: nobody polls, so no Event to build
            self._lists[MESSAGE].append(data)
        elif kind is OPEN:
            self._run_callbacks(OPEN, None, ())
        elif kind is CLOSE:
            closed: Closed = data
            self.close_code = closed.code
            self.close_reason = closed.reason
            self._run_callbacks(CLOSE, None, ())
            data = None
        else:
            self._run_callbacks(ERROR, None, (data,))
        return Event(kind, self, None, data) if record else None

    def _deliver_error(self, who: Any, exc: BaseException) -> None:
        self._run_callbacks(ERROR, None, (exc,))

    def __repr__(self) -> str:
        state = "open" if self._channel is not None and self._channel.protocol.state is State.OPEN else "closed"
        return f"<toad.Connection {self.url!r} {state}>"

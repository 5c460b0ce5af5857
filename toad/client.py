"""The client side: :class:`Connection`, one connection to a WebSocket server."""

from __future__ import annotations

import itertools
import logging
import math
import random
import socket
import ssl as ssl_module
import threading
from collections.abc import Sequence
from time import monotonic
from typing import Any, ClassVar

from .endpoint import CLOSE, ERROR, MESSAGE, OPEN, Endpoint, Event
from .errors import ConnectionFailed, InvalidHandshake, NotConnected, UsageError
from .frames import CloseCode
from .network import Channel, Limits, Loop
from .protocol import CLIENT, DEFAULT_MAX_MESSAGE_SIZE, Closed, Opened, Protocol, State, close_payload
from .protocol import Event as ProtocolEvent
from .urls import WebSocketURL, parse_url

__all__ = ["Connection"]

logger = logging.getLogger("toad")

_ids = itertools.count(1)

#: The close codes after which a connection with ``reconnect=True`` comes back:
#: the connection was lost (1006), or the server said it is going away (1001),
#: failed (1011), is restarting (1012) or is busy (1013). Any other close was
#: meant: a normal goodbye, a policy, a game's own code.
RECONNECT_CODES = frozenset(
    {
        CloseCode.ABNORMAL_CLOSURE,
        CloseCode.GOING_AWAY,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
    }
)

_MAX_DOUBLINGS = 64  # 2**64 times any delay is past any reconnect_max_delay; no float overflow past it


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

    ``reconnect=True`` brings a lost connection back by itself: when a
    connection that was open is lost (1006) or the server closes it with
    1001, 1011, 1012 or 1013 (see :data:`RECONNECT_CODES`), and the game did
    not call :meth:`close`, toad opens a new one to the same URL with the
    same options. Attempt ``n`` (from 0) waits ``min(reconnect_max_delay,
    reconnect_delay * 2**n)`` seconds times a random factor between 0.5 and
    1, so the clients of a restarted server do not all come back at once;
    the wait starts again from ``reconnect_delay`` once a connection has
    stayed open ``reconnect_max_delay`` seconds. ``reconnect_attempts``
    failed attempts in a row (``None``: no limit) end it with
    ``onerror(ConnectionFailed)``. The game sees ``onclose`` for the lost
    connection, then ``onopen`` for the new one; failed attempts are only
    logged (logger ``"toad"``). Meanwhile :meth:`isopen` stays true,
    :attr:`reconnecting` is true and :meth:`send` returns ``False``. The
    first :meth:`open` still raises :class:`~toad.ConnectionFailed` if it
    cannot connect: reconnecting starts only once a connection was open.
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
        reconnect: bool = False,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        reconnect_attempts: int | None = None,
    ) -> None:
        super().__init__(max_queue, max_queue_size)
        self.id: int = next(_ids)
        #: The URL given to the constructor or to :meth:`open`.
        self.url: str | None = url
        if url is not None:
            parse_url(url)  # a bad URL is reported here, at once
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise UsageError("ssl must be an ssl.SSLContext (or leave it out to use the system's certificates)")
        _check_reconnect_options(reconnect, reconnect_delay, reconnect_max_delay, reconnect_attempts)
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
        self.reconnect = reconnect
        self.reconnect_delay = float(reconnect_delay)
        self.reconnect_max_delay = float(reconnect_max_delay)
        self.reconnect_attempts = reconnect_attempts
        #: The subprotocol the server chose, once open.
        self.subprotocol: str | None = None
        #: The close code and reason, once closed (1006 when the connection was lost).
        #: After a reconnect they still tell why the previous connection ended.
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._channel: Channel | None = None
        self._target: WebSocketURL | None = None
        self._closed_by_game = False
        self._close_args: tuple[int, str] = (CloseCode.NORMAL_CLOSURE, "")
        # Reconnecting. The loop's thread writes these; the game's thread only reads them.
        self._reconnecting = False  # between connections: lost, and not yet back or given up
        self._switching = False  # handing over the new connection's (or the give-up's) first event
        self._round = 0  # which reconnect; a timer or attempt of an earlier one does nothing
        self._doublings = 0  # n in the backoff; kept across connections that die young
        self._failures = 0  # failed attempts in a row
        self._last_failure: ConnectionFailed | None = None
        self._opened_at = 0.0

    # -- opening ---------------------------------------------------------------

    def open(self, url: str | None = None, block: bool = True) -> None:
        """Connect to ``url`` (``ws://``, ``wss://``, or the seed's ``http://``) and run.

        Waits until the opening handshake is done (at most ``open_timeout``
        seconds) and raises :class:`~toad.ConnectionFailed`, with the reason,
        if it cannot (even with ``reconnect=True``: that one only brings back
        a connection that was open). Then, with ``block=True``, runs the
        connection on this thread, running callbacks as events arrive, and
        returns once it is closed for good (after any reconnects). With
        ``block=False`` it returns at once: the network runs on a background
        thread and callbacks run when this thread calls :meth:`poll` or
        :meth:`messages`.
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
        self._reconnecting = self._switching = False
        self._round += 1
        self._doublings = self._failures = 0
        self._last_failure = None
        loop = Loop(self, self.limits)
        try:
            sock, protocol, events = self._connect(target)
        except BaseException:
            loop.release()
            raise
        loop.exit_when_empty = True
        self._loop = loop
        self._target = target
        channel = self._adopt(loop, sock, protocol)
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

    def _adopt(self, loop: Loop, sock: socket.socket, protocol: Protocol) -> Channel:
        # Serve a freshly opened socket on the loop. On the loop's thread, or
        # on the game's before the loop runs.
        assert self._target is not None
        channel = Channel(loop, sock, protocol, (self._target.host, self._target.port))
        channel.user = self
        loop.add_channel(channel)
        with channel.lock:  # answers to frames that came with the 101 (a Pong, a Close)
            channel._write(protocol.data_to_send())
        if protocol.state is State.CLOSED:
            channel._check_finished()
        self._channel = channel
        self.subprotocol = protocol.subprotocol
        self._opened_at = monotonic()
        return channel

    def _connect(self, target: WebSocketURL) -> tuple[socket.socket, Protocol, list[ProtocolEvent]]:
        # Blocking, bounded by open_timeout: on the caller's thread for open()
        # (the game asked to connect and cannot do anything useful with it
        # until then), on a short-lived thread of its own for a reconnect.
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

    # -- reconnecting (the loop's thread) ----------------------------------------

    def _should_reconnect(self, channel: Channel, closed: Closed) -> bool:
        loop = self._loop
        return (
            self.reconnect
            and channel is self._channel
            and not self._reconnecting
            and not self._closed_by_game
            and loop is not None
            and not loop.stopping  # Ctrl-C or the program exiting: going away is what was meant
            and closed.error is None  # a server that broke the protocol would break it again
            and closed.code in RECONNECT_CODES
        )

    def _wants_reconnect(self, round_: int) -> bool:
        """Whether reconnect round ``round_`` should go on (the loop's thread)."""
        loop = self._loop
        return (
            round_ == self._round
            and self._reconnecting
            and not self._closed_by_game
            and loop is not None
            and not loop.stopping
        )

    def _begin_reconnecting(self, closed: Closed) -> None:
        # Called before the lost connection's CLOSE is handed over, so that
        # isopen() never turns false in between and onclose sees reconnecting.
        loop = self._loop
        assert loop is not None
        if monotonic() - self._opened_at >= self.reconnect_max_delay:
            self._doublings = 0  # it was a good connection: start again from reconnect_delay
        self._failures = 0
        self._last_failure = None
        self._round += 1
        self._reconnecting = True
        loop.exit_when_empty = False  # the loop outlives its channel while there is none
        logger.info("the connection to %s ended (%d %s): reconnecting", self.url, closed.code, closed.reason)
        round_ = self._round
        # Through call_soon: the first open() hands over its events before the loop runs.
        loop.call_soon(lambda: self._wait_then_attempt(round_))

    def _backoff(self) -> float:
        """The wait before the next attempt: min(max, delay * 2**n), times a factor in [0.5, 1]."""
        nominal = min(self.reconnect_max_delay, self.reconnect_delay * 2.0 ** min(self._doublings, _MAX_DOUBLINGS))
        return nominal * random.uniform(0.5, 1.0)

    def _wait_then_attempt(self, round_: int) -> None:
        loop = self._loop
        if loop is None or not self._wants_reconnect(round_):
            self._end_reconnecting(round_)
            return
        delay = self._backoff()
        self._doublings += 1
        logger.debug("reconnecting to %s in %.2f s (attempt %d)", self.url, delay, self._failures + 1)
        loop.call_later(delay, lambda: self._attempt(round_))

    def _attempt(self, round_: int) -> None:
        loop = self._loop
        if loop is None or not self._wants_reconnect(round_):
            self._end_reconnecting(round_)
            return
        # Connecting blocks (DNS, TCP, TLS, the handshake: up to open_timeout),
        # so it runs on a thread of its own: the loop stays free for close()
        # and stop(), and with block=True the game's thread is not frozen.
        threading.Thread(
            target=self._connect_in_background,
            args=(loop, round_),
            name=f"toad-client-{self.id}-reconnect",
            daemon=True,
        ).start()

    def _connect_in_background(self, loop: Loop, round_: int) -> None:
        # On the attempt's own thread; hands the outcome to the loop's thread.
        target = self._target
        assert target is not None
        outcome: tuple[socket.socket, Protocol, list[ProtocolEvent]] | ConnectionFailed
        try:
            outcome = self._connect(target)
        except ConnectionFailed as exc:
            outcome = exc
        except Exception as exc:  # a bug must not end reconnecting without a word
            logger.exception("reconnecting to %s failed unexpectedly", self.url)
            outcome = ConnectionFailed(f"reconnecting to {target} failed: {exc!r}")
        taken = threading.Event()

        def hand_over() -> None:
            taken.set()
            self._attempted(round_, outcome)

        loop.call_next(hand_over)
        # A loop that stops first (the program exits) never runs hand_over:
        # then the new socket is this thread's to close. The loop sets taken
        # before it can set stopped, so stopped without taken means never.
        while not taken.wait(0.1):
            if loop.stopped.is_set():
                if not taken.is_set() and not isinstance(outcome, ConnectionFailed):
                    outcome[0].close()
                return

    def _attempted(
        self, round_: int, outcome: tuple[socket.socket, Protocol, list[ProtocolEvent]] | ConnectionFailed
    ) -> None:
        loop = self._loop
        if loop is None or not self._wants_reconnect(round_):
            if not isinstance(outcome, ConnectionFailed):
                outcome[0].close()  # the game closed (or the loop stops) while this attempt connected
            self._end_reconnecting(round_)
            return
        if isinstance(outcome, ConnectionFailed):
            self._failures += 1
            self._last_failure = outcome
            logger.info("reconnecting to %s failed: %s", self.url, outcome)
            if self.reconnect_attempts is not None and self._failures >= self.reconnect_attempts:
                self._give_up(loop)
            else:
                self._wait_then_attempt(round_)
            return
        sock, protocol, events = outcome
        channel = self._adopt(loop, sock, protocol)
        if self._closed_by_game:  # close() ran on the game's thread while _adopt() set _channel
            channel.close(*self._close_args)
        logger.info("reconnected to %s", self.url)
        # Until the new connection's first event is queued, _switching keeps isopen() true.
        self._switching = True
        self._reconnecting = False
        loop.exit_when_empty = True
        try:
            self._on_events(channel, events)
        finally:
            self._switching = False

    def _give_up(self, loop: Loop) -> None:
        error = ConnectionFailed(
            f"gave up reconnecting to {self.url} after {self._failures} failed "
            f"attempt{'' if self._failures == 1 else 's'}: {self._last_failure}"
        )
        error.__cause__ = self._last_failure
        logger.info("%s", error)
        channel = self._channel
        assert channel is not None
        self._switching = True
        self._reconnecting = False
        loop.exit_when_empty = True  # nothing left to serve: the loop ends, wait_closed() returns
        try:
            self._emit(ERROR, channel, error)
        finally:
            self._switching = False

    def _end_reconnecting(self, round_: int) -> None:
        # The game closed, or the loop stops: no more attempts, and the loop may end.
        if round_ != self._round or not self._reconnecting:
            return
        self._reconnecting = False
        loop = self._loop
        if loop is not None:
            loop.exit_when_empty = True

    # -- using it --------------------------------------------------------------

    def isopen(self) -> bool:
        """Whether the connection is open, or has events the game has not been handed yet.

        It turns ``False`` once the game has been handed the close (by
        :meth:`poll` or :meth:`messages`, which also run ``onclose``), or at
        once when the game itself called :meth:`close`. So ``while
        conn.isopen(): for message in conn.messages(): ...`` sees every
        message, even those that arrived just before the server closed, and
        ``onclose`` has run when the loop ends. While it is
        :attr:`reconnecting` it stays ``True``; if reconnecting gives up, it
        turns ``False`` once the game has been handed that ``"error"``.
        """
        if self._channel is None or self._closed_by_game:
            return False
        # _reconnecting and _switching before _channel: the loop sets the new
        # channel before it clears them, so no moment between connections reads False.
        if self.reconnecting or self._switching:
            return True
        channel = self._channel
        if channel.protocol.state is State.OPEN and not channel.overflowed:
            return True
        return bool(self._queue) or (MESSAGE in self._asked and bool(self._lists[MESSAGE]))

    @property
    def reconnecting(self) -> bool:
        """Whether the connection was lost and toad is bringing it back (``reconnect=True``).

        ``True`` from just before the lost connection's ``onclose`` until
        just before the new connection's ``onopen`` (or until it gives up,
        or the game calls :meth:`close`). A game shows "reconnecting..."
        while it is true.
        """
        loop = self._loop
        return self._reconnecting and not self._closed_by_game and loop is not None and not loop.stopped.is_set()

    def send(self, message: str | bytes) -> bool:
        """Send a message: ``str`` as a text frame, ``bytes`` as a binary frame.

        Never blocks. Returns ``False`` (and sends nothing) once the
        connection is closing or closed, and while it is
        :attr:`reconnecting`: nothing is kept for the next connection, so a
        game sends its state again in ``onopen``.
        """
        channel = self._channel
        if channel is None:
            raise NotConnected("send() needs an open connection: call open(url) first")
        return channel.send(message)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; never blocks. ``onclose`` runs once it is done.

        While :attr:`reconnecting`, it stops reconnecting and the connection
        ends (its ``onclose`` ran when it was lost).
        """
        channel = self._channel
        if channel is None:
            return
        close_payload(code, reason)  # a bad code is reported before anything changes
        self._close_args = (code, reason)
        self._closed_by_game = True
        channel.close(code, reason)
        # A reconnect may have put a new channel in place meanwhile: the loop
        # checks _closed_by_game after it sets _channel, this checks after
        # setting the flag, so one of the two closes it.
        latest = self._channel
        if latest is not None and latest is not channel:
            latest.close(code, reason)
        loop = self._loop
        if self.reconnect and loop is not None:
            round_ = self._round
            loop.call_soon(lambda: self._end_reconnecting(round_))

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the connection is fully closed (no more reconnects); returns whether it is."""
        loop = self._loop
        if loop is None:
            return True
        return loop.stopped.wait(timeout)

    def messages(self) -> list[str | bytes]:
        """The messages that arrived since the last call, in order; never blocks."""
        return self._take(MESSAGE)

    # -- the loop's side ---------------------------------------------------------

    def _on_events(self, channel: Any, events: list[ProtocolEvent]) -> None:
        # A Closed event is always the last of its batch.
        if events and type(events[-1]) is Closed:
            closed = events[-1]
            if self._should_reconnect(channel, closed):
                self._begin_reconnecting(closed)
        super()._on_events(channel, events)

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
            data = (closed.code, closed.reason)
        else:
            self._run_callbacks(ERROR, None, (data,))
        return Event(kind, self, None, data) if record else None

    def _deliver_error(self, who: Any, exc: BaseException) -> None:
        self._run_callbacks(ERROR, None, (exc,))

    def __repr__(self) -> str:
        if self.reconnecting:
            state = "reconnecting"
        elif self._channel is not None and self._channel.protocol.state is State.OPEN:
            state = "open"
        else:
            state = "closed"
        return f"<toad.Connection {self.url!r} {state}>"


def _check_reconnect_options(reconnect: object, delay: object, max_delay: object, attempts: object) -> None:
    """Raise :class:`~toad.UsageError` for reconnect options that cannot work."""
    if not isinstance(reconnect, bool):
        raise UsageError(f"reconnect must be True or False, not {reconnect!r}")
    for name, value in (("reconnect_delay", delay), ("reconnect_max_delay", max_delay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise UsageError(f"{name} must be a number of seconds above 0, like 0.5, not {value!r}")
    assert isinstance(delay, (int, float)) and isinstance(max_delay, (int, float))
    if max_delay < delay:
        raise UsageError(
            f"reconnect_max_delay ({max_delay!r}) must be at least reconnect_delay ({delay!r}): "
            "it caps the wait, which starts at reconnect_delay and doubles"
        )
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        raise UsageError(
            f"reconnect_attempts must be a whole number of 1 or more, or None to try forever, not {attempts!r}"
        )

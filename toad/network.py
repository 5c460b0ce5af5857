"""The I/O layer: non-blocking sockets and one selector loop on top of :mod:`toad.protocol`.

A :class:`Loop` serves every connection of one owner (a server, or a client
connection) on one thread: the owner's network thread with ``block=False``, or
the caller's own thread with ``block=True``. Each connection is a
:class:`Channel`: a socket, its :class:`~toad.protocol.Protocol`, and the
bytes still waiting to go out.

Writes never block. Any thread may write to a channel: the bytes go straight
to the socket when it can take them, and what it cannot take waits in the
channel's buffer for the loop to flush. A per-channel lock keeps frames whole
and in order. Everything else (accepting, reading, timers, closing sockets)
happens on the loop's thread.

Writes made on the loop's own thread while it handles one turn of network
events (a ``block=True`` callback answering a message, a Pong, a Close) are
held back and sent at the end of that turn, one system call per connection
for all of them: a peer that sent twenty messages in one packet gets its
twenty answers in one packet too. The game's thread does the same while
``poll()`` runs its callbacks (see :func:`hold_writes`).

The owner sees the loop through three methods, called on the loop's thread:
``_on_events(channel, events)`` with the protocol's events,
``_backlogged(channel)``, true while the game has so many of that channel's
messages waiting that the loop should stop reading it (TCP then slows that
peer down, and only that one; nothing is lost), and ``_turn_done()`` at the
end of each turn of the loop (while :attr:`Loop.in_turn` is true, the owner
may leave waking the game's thread to it: once per turn, not per event).
A server also sets :attr:`Loop.on_accept` to make a channel for each new socket.
"""

from __future__ import annotations

import atexit
import errno
import heapq
import logging
import selectors
import socket
import ssl
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from time import monotonic
from typing import Any
from typing import Protocol as TypingProtocol

from .errors import TooManyMessages
from .messages import Binary, Text
from .protocol import Closed, Event, Protocol, State, close_payload

__all__ = ["Channel", "Limits", "Loop", "hold_writes", "release_writes"]

logger = logging.getLogger("toad")

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV_SIZE = 65536  # below glibc's mmap threshold, so each recv buffer is cheap
_RECV_MAX = 4 << 20  # the most one recv() asks for when a large frame is on its way
_CORK_MAX = 65536  # held-back bytes past which a channel is written at once
_SWEEP_INTERVAL = 0.25  # how often timers are checked, in seconds
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_ACCEPT_PAUSE = 0.5  # seconds to stop accepting when the process is out of file descriptors
_OUT_OF_RESOURCES = frozenset(
    code
    for code in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, getattr(errno, "WSAEMFILE", None))
    if code is not None
)
# select() on Windows watches at most 512 sockets (FD_SETSIZE); elsewhere it
# cannot take descriptors past 1024. Keep well under either.
_SELECT_MAX_CHANNELS = 500
_FULL_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n"
    b"Connection: close\r\n\r\nthe server is full: try it later\n"
)


class Limits:
    """The timeouts and bounds a loop enforces; see :class:`toad.Server` for their meaning."""

    __slots__ = (
        "close_timeout",
        "handshake_timeout",
        "max_connections",
        "max_messages_per_second",
        "max_write_buffer",
        "ping_interval",
        "ping_timeout",
    )

    def __init__(
        self,
        *,
        handshake_timeout: float = 10.0,
        close_timeout: float = 5.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_write_buffer: int = 4 << 20,
        max_connections: int | None = None,
        max_messages_per_second: float | None = None,
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.max_messages_per_second = max_messages_per_second
        self.max_connections = max_connections
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_write_buffer = max_write_buffer


class Owner(TypingProtocol):
    def _on_events(self, channel: Channel, events: list[Event]) -> None: ...

    def _backlogged(self, channel: Channel) -> bool: ...

    def _turn_done(self) -> None: ...


class Channel:
    """One connection's I/O: a non-blocking socket, its protocol, and its outgoing bytes."""

    __slots__ = (
        "__weakref__",
        "address",
        "close_deadline",
        "closed",
        "created",
        "finish_deadline",
        "finished",
        "interest",
        "last_recv",
        "lock",
        "loop",
        "out",
        "out_size",
        "overflowed",
        "paused",
        "ping_sent",
        "protocol",
        "queued_bytes_in",
        "queued_bytes_out",
        "queued_in",
        "queued_out",
        "sock",
        "tls",
        "tls_pending",
        "tls_wants_write",
        "tokens",
        "tokens_at",
        "user",
        "writing",
    )

    def __init__(self, loop: Loop, sock: socket.socket, protocol: Protocol, address: Any) -> None:
        self.loop = loop
        self.sock = sock
        self.protocol = protocol
        self.address = address
        # One lock for every channel of a loop: a broadcast then takes it once
        # for many channels instead of once per channel, which costs about as
        # much as the send() itself. No code holds it for two channels at once.
        self.lock = loop.lock
        self.out: deque[bytes | memoryview] = deque()
        self.out_size = 0
        self.writing = False  # bytes wait in self.out: watch for EVENT_WRITE
        self.paused = False  # not reading: the game is too far behind
        self.interest = 0  # what the selector watches now (the loop's thread only)
        self.closed = False  # the socket is closed
        self.overflowed = False
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.tls_pending = self.tls and protocol.state is State.CONNECTING
        self.tls_wants_write = False
        now = monotonic()
        self.created = now
        self.last_recv = now
        self.ping_sent = 0.0
        self.close_deadline = 0.0  # when a closing handshake we started gives up
        self.finish_deadline = 0.0  # when a finished connection's socket is closed regardless
        self.finished = False  # _check_finished() has ended (or started ending) the TCP connection
        #: The owner's object for this connection (a toad.Client, or the Connection).
        self.user: Any = None
        # Messages handed to the game and taken by it, counted on each side by
        # one thread only (the loop's, the game's), so no update is ever lost.
        self.queued_in = self.queued_out = 0
        self.queued_bytes_in = self.queued_bytes_out = 0
        # The message rate limit's token bucket: it holds two seconds' worth of
        # messages, so a burst after a lag spike is not mistaken for a flood.
        rate = loop.limits.max_messages_per_second
        self.tokens = 2.0 * rate if rate else 0.0
        self.tokens_at = now

    # -- any thread ------------------------------------------------------------

    def send(self, message: str | bytes) -> bool:
        """Encode and write one data message; ``False`` if the connection is not open."""
        with self.lock:
            frame = self.protocol.encode(message)
            if frame is None or self.overflowed:
                return False
            self._write(frame)
            return not self.overflowed  # this frame passed the write-buffer limit: dropped with the peer

    def send_frame(self, frame: bytes) -> bool:
        """Write an already-encoded data frame (a broadcast); ``False`` if not open."""
        with self.lock:
            if self.protocol.state is not State.OPEN or self.overflowed:
                return False
            self._write(frame)
            return not self.overflowed

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the loop drops the connection if it is not answered in time.

        A code or reason that cannot be sent raises :class:`~toad.errors.InvalidCloseCode`.
        """
        close_payload(code, reason)  # a mistake is reported even when already closed
        with self.lock:
            if self.protocol.close_sent or self.protocol.state is State.CLOSED:
                return
            self.protocol.send_close(code, reason)
            self._write(self.protocol.data_to_send())
        self.close_deadline = monotonic() + self.loop.limits.close_timeout
        if self.paused:
            self.loop.call_next(self.loop.resume_reading)  # to read the peer's Close

    def _write(self, data: bytes) -> None:
        # Called with self.lock held.
        if self.closed or not data:
            return
        out = self.out
        if out and self.writing:
            # The peer is behind. Past the limit it has stopped reading: drop
            # it. Any one message may still be queued, however large, so a
            # big message to a peer that reads is never mistaken for that.
            if self.out_size > self.loop.limits.max_write_buffer:
                self._overflow()
                return
            out.append(data)
            self.out_size += len(data)
            return
        held = _held.channels
        if out or held is not None:
            # Held back until release_writes() (see the module's docstring):
            # by this thread, or by another one that already holds this channel.
            if not out and held is not None:
                held.append(self)  # the first held bytes of this channel
            out.append(data)
            self.out_size += len(data)
            if self.out_size >= _CORK_MAX:
                self._send_out()
            return
        self._send_now(data)

    def _send_now(self, data: bytes | memoryview) -> None:
        # Called with self.lock held and self.out empty.
        try:
            sent = self.sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        except OSError:
            return  # the loop notices the dead socket on its next read
        if sent < len(data):
            self._keep(data, sent)

    def _keep(self, data: bytes | memoryview, sent: int) -> None:
        # Called with self.lock held and self.out empty: the socket took only
        # ``sent`` bytes of ``data``; the rest waits for the socket to be writable.
        self.out.append(memoryview(data)[sent:])
        self.out_size = len(data) - sent
        if not self.writing:
            self.writing = True
            self.loop.call_soon(self._update_interest)

    def _send_out(self) -> None:
        # Called with self.lock held: write the held-back bytes in one system call.
        out = self.out
        if self.writing or not out or self.closed:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        self._send_now(data)

    def _overflow(self) -> None:
        # Called with self.lock held, so the drop always waits for the loop's
        # next turn: run at once (call_soon on the loop's own thread, e.g. from
        # a block=True callback) it would take the lock again and deadlock.
        if not self.overflowed:
            self.overflowed = True
            self.loop.call_next(self._drop_slow_reader)

    # -- the loop's thread -----------------------------------------------------

    def _update_interest(self) -> None:
        """Make the selector watch what this channel needs now."""
        if self.closed:
            return
        want = (0 if self.paused else _READ) | (_WRITE if self.writing or self.tls_wants_write else 0)
        if want == self.interest:
            return
        selector = self.loop.selector
        if not want:
            selector.unregister(self.sock)
        elif not self.interest:
            selector.register(self.sock, want, self)
        else:
            selector.modify(self.sock, want, self)
        self.interest = want

    def _pause(self) -> None:
        # Mark first, then look again: the game may have drained this channel
        # between the check and the mark, and it only schedules a resume for
        # channels it sees marked. Whichever side is second sees the other.
        self.paused = True
        self.loop.paused.add(self)
        if not self._should_pause():
            self.paused = False
            self.loop.paused.discard(self)
            self._read()
            return
        self._update_interest()

    def _drop_slow_reader(self) -> None:
        logger.info("dropping %s: it stopped reading and %d bytes waited for it", self.address, self.out_size)
        self.loop.abort(self, "the peer did not read its messages in time (write buffer full)")

    def _flush(self) -> None:
        with self.lock:
            out = self.out
            if len(out) > 1:
                # Many small frames wait: one system call for as many as fit.
                joined = b"".join(out)
                out.clear()
                out.append(joined)
            while out:
                data = out[0]
                try:
                    sent = self.sock.send(data)
                except _WOULD_BLOCK:
                    return
                except OSError:
                    out.clear()
                    self.out_size = 0
                    break
                self.out_size -= sent
                if sent < len(data):
                    out[0] = memoryview(data)[sent:]
                    return
                out.popleft()
            self.writing = False
        self._update_interest()
        self._check_finished()

    def _check_finished(self) -> None:
        # The protocol is over and everything is sent: end the TCP connection.
        # RFC 6455 section 7.1.1: the server closes it first, and a client
        # waits for that (up to the close timeout) before closing its own.
        if self.closed or self.protocol.state is not State.CLOSED or self.out or self.finished:
            return
        self.finished = True
        # (the sweep may have set a deadline already, as a safety net: keep it)
        if not self.finish_deadline:
            self.finish_deadline = monotonic() + self.loop.limits.close_timeout
        if self.protocol.is_client:
            return
        if self.tls:
            self.loop.close_channel(self)
            return
        # Half-close, then read until the peer closes too: closing a socket
        # with unread bytes sends a reset, which can destroy our Close frame
        # before the peer reads it (and it would see 1006, not our code).
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.loop.close_channel(self)

    def _on_ready(self, mask: int) -> None:
        if self.tls_pending:
            self._handshake_tls()
            return
        if mask & _WRITE:
            self._flush()
        if mask & _READ and not self.closed:
            if self._should_pause():
                self._pause()  # the loop reads again when the game catches up
            else:
                self._read()

    def _should_pause(self) -> bool:
        # A connection that is closing is always read, so the peer's Close
        # frame arrives however far behind the game is.
        protocol = self.protocol
        return (
            protocol.state is State.OPEN
            and not protocol.close_sent
            and not self.loop.stopping
            and self.loop.owner._backlogged(self)
        )

    def _limit_rate(self, events: list[Event]) -> list[Event]:
        # Called with self.lock held. A peer past the server's message rate is
        # failed with 1008 (policy violation); what it sent past the limit is dropped.
        rate = self.loop.limits.max_messages_per_second
        assert rate
        now = monotonic()
        tokens = min(2.0 * rate, self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now
        for i, event in enumerate(events):
            kind = type(event)
            if kind is not Text and kind is not Binary:
                continue
            if tokens < 1.0:
                self.tokens = tokens
                reason = f"sending more than {rate:g} messages a second"
                closed = self.protocol.fail(TooManyMessages(reason))
                logger.info("closing %s: %s", self.address, reason)
                return events[:i] + ([closed] if closed is not None else [])
            tokens -= 1.0
        self.tokens = tokens
        return events

    def _handshake_tls(self) -> None:
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.tls_wants_write = False
        except ssl.SSLWantWriteError:
            self.tls_wants_write = True
        except (OSError, ValueError) as exc:
            logger.info("TLS handshake with %s failed: %s", self.address, exc)
            self.loop.abort(self, "TLS handshake failed")
            return
        else:
            self.tls_pending = self.tls_wants_write = False
            self._read()  # the client's opening handshake may have come with it
        self._update_interest()

    def _read(self) -> None:
        sock = self.sock
        tls = self.tls
        while True:
            # A large frame on its way is read in a few big pieces, not many small ones.
            size = min(max(_RECV_SIZE, self.protocol.bytes_expected), _RECV_MAX)
            try:
                if tls:
                    # One SSL object must not read and write on two threads at once.
                    with self.lock:
                        data = sock.recv(size)
                else:
                    data = sock.recv(size)
            except _WOULD_BLOCK:
                return
            except OSError:
                data = b""
            if not data:
                with self.lock:
                    events: list[Event] = self.protocol.receive_eof()
                self.loop.close_channel(self, events)
                return
            self.last_recv = monotonic()
            self.ping_sent = 0.0
            with self.lock:
                events = self.protocol.receive_data(data)
                if events and self.loop.limits.max_messages_per_second:
                    events = self._limit_rate(events)
                out = self.protocol.data_to_send()
                if out:
                    self._write(out)
            if events:
                self.loop.owner._on_events(self, events)
                if type(events[-1]) is Closed:
                    self._check_finished()
            # An SSL socket may hold decrypted bytes the selector cannot see.
            if self.closed or not tls or not sock.pending():  # type: ignore[attr-defined]
                return


class Loop:
    """A selector loop for one owner's channels (and, for a server, its listening sockets)."""

    def __init__(self, owner: Owner, limits: Limits) -> None:
        self.owner = owner
        self.limits = limits
        self.selector = selectors.DefaultSelector()
        self.channels: set[Channel] = set()
        self.paused: set[Channel] = set()  # channels not read until the game catches up
        self.listeners: list[socket.socket] = []
        self._accept_resume = 0.0  # when to accept again after running out of descriptors
        cap = limits.max_connections
        if isinstance(self.selector, selectors.SelectSelector):
            cap = min(cap or _SELECT_MAX_CHANNELS, _SELECT_MAX_CHANNELS)
        self.max_channels = cap
        #: The exception that killed the loop, if one did (a bug in toad, or the OS).
        self.crashed: BaseException | None = None
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []  # a heap: (when, order, fn)
        #: True while the loop handles a turn; the owner's _turn_done() follows.
        self.in_turn = False
        self._timer_order = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False
        self.selector.register(self._wake_r, _READ, None)
        self.thread: threading.Thread | None = None
        self.thread_id: int | None = None
        self.stopping = False  # stop() was called: closing handshakes under way
        self.stopped = threading.Event()  # the loop has exited and released everything
        self._stop_deadline = 0.0
        self._stop_code = 1001
        self._stop_reason = ""
        self._next_sweep = 0.0
        self.on_accept: Callable[[socket.socket, Any], Channel | None] | None = None
        #: Guards every channel's protocol and outgoing bytes (see Channel.lock).
        self.lock = threading.Lock()
        #: For a client loop: run until its only channel is gone.
        self.exit_when_empty = False

    # -- any thread ------------------------------------------------------------

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop's thread, soon (at once if this is the loop's thread)."""
        if threading.get_ident() == self.thread_id:
            fn()
            return
        self.call_next(fn)

    def call_next(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop's thread at its next turn, never at once."""
        self._calls.append(fn)
        self.wake()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop's thread after ``delay`` seconds (the loop's thread only)."""
        self._timer_order += 1
        heapq.heappush(self._timers, (monotonic() + delay, self._timer_order, fn))

    def wake(self) -> None:
        """Interrupt the loop's wait for the network."""
        if self._woken:
            return
        self._woken = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def send_frame_to_all(self, channels: Iterable[Channel], frame: bytes) -> int:
        """Write one encoded data frame to each open channel of this loop; returns to how many.

        Never blocks; the same as :meth:`Channel.send_frame` on each channel,
        with the common case (an open channel with nothing waiting) kept to a
        few lines, since a game server's whole tick goes through here.
        """
        if _held.channels is not None:
            # Writes are held back on this thread now: the same for a broadcast.
            return sum(channel.send_frame(frame) for channel in channels)
        n = len(frame)
        sent_to = 0
        open_ = State.OPEN
        lock = self.lock
        lock.acquire()
        try:
            for i, channel in enumerate(channels, 1):
                if not i & 63:
                    # Let the loop's thread in now and then: it reads while we write.
                    lock.release()
                    lock.acquire()
                if channel.out or channel.closed or channel.overflowed:
                    if channel.protocol.state is open_ and not channel.overflowed:
                        channel._write(frame)
                        sent_to += not channel.overflowed
                    continue
                if channel.protocol.state is not open_:
                    continue
                # Channel._send_now() written out: a call per client here costs
                # a measurable share of a game server's tick.
                try:
                    sent = channel.sock.send(frame)
                except _WOULD_BLOCK:
                    sent = 0
                except OSError:
                    continue  # the loop notices the dead socket on its next read
                if sent < n:
                    channel._keep(frame, sent)
                sent_to += 1
        finally:
            lock.release()
        return sent_to

    def stop(self, code: int = 1001, reason: str = "") -> None:
        """Close every connection with ``code``, then exit; returns at once (see :attr:`stopped`)."""
        self._stop_code = code
        self._stop_reason = reason
        self._calls.append(self._begin_stop)
        self.wake()

    # -- the loop's thread -----------------------------------------------------

    def add_listener(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.listeners.append(sock)
        self.selector.register(sock, _READ, sock)

    def add_channel(self, channel: Channel) -> None:
        channel.sock.setblocking(False)
        self.channels.add(channel)
        channel._update_interest()

    def resume_reading(self) -> None:
        """Read again the paused channels the game has caught up with."""
        for channel in list(self.paused):
            if channel._should_pause():
                continue
            self.paused.discard(channel)
            channel.paused = False
            channel._update_interest()
            if channel.tls and not channel.closed and channel.sock.pending():  # type: ignore[attr-defined]
                channel._read()  # decrypted bytes the selector cannot see

    def start_thread(self, name: str) -> None:
        """Run the loop on a new daemon thread (stopped gracefully when the program exits)."""
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        _background_loops.add(self)
        self.thread.start()

    def run(self) -> None:
        """Serve until stopped, on the calling thread.

        Ctrl-C (KeyboardInterrupt) starts a graceful stop: every connection is
        closed with 1001 within the close timeout, then the interrupt is
        raised again. A second Ctrl-C drops the connections at once.
        """
        self.thread_id = threading.get_ident()
        interrupted: KeyboardInterrupt | None = None
        try:
            while True:
                try:
                    self._serve()
                    break
                except KeyboardInterrupt as exc:
                    if interrupted is not None:
                        raise
                    interrupted = exc
                    self._stop_code, self._stop_reason = 1001, "the server is shutting down"
                    self._begin_stop()
        except BaseException as exc:
            # A second Ctrl-C (or a bug): drop every connection so the port is
            # released and no socket is left half-open, then re-raise.
            if not isinstance(exc, KeyboardInterrupt):
                self.crashed = exc
                logger.critical("toad's network loop stopped: %r", exc, exc_info=exc)
            for channel in list(self.channels):
                self.abort(channel, "the network loop stopped abruptly")
            raise
        finally:
            release_writes()  # with block=True this is the game's thread: leave it writing normally
            self.in_turn = False
            self.release()
            self.owner._turn_done()
        if interrupted is not None:
            raise interrupted

    def _serve(self) -> None:
        select = self.selector.select
        owner = self.owner
        while True:
            self.in_turn = True
            hold_writes()
            if self._calls:
                self._run_calls()
            release_writes()  # before waiting: nothing held back may wait for the network
            self.in_turn = False
            owner._turn_done()
            if (self.stopping or self.exit_when_empty) and not self.channels:
                return
            timeout = 0.0 if self._calls else _SWEEP_INTERVAL
            if self._timers and timeout:
                timeout = min(timeout, max(0.0, self._timers[0][0] - monotonic()))
            ready = select(timeout)
            self.in_turn = True
            hold_writes()
            for key, mask in ready:
                data = key.data
                if data is None:
                    self._drain_wake()
                elif type(data) is Channel:
                    data._on_ready(mask)
                elif not self._accept_resume:  # (a listener unregistered earlier in this batch)
                    self._accept(data)
            now = monotonic()
            timers = self._timers
            while timers and timers[0][0] <= now:
                fn = heapq.heappop(timers)[2]
                try:
                    fn()
                except Exception:  # pragma: no cover - a bug in toad, kept off the user's loop
                    logger.exception("internal error in toad's network loop")
            if now >= self._next_sweep:
                self._next_sweep = now + _SWEEP_INTERVAL
                self._sweep(now)
            release_writes()
            self.in_turn = False
            owner._turn_done()

    def _drain_wake(self) -> None:
        # Drain first, then clear the flag: a wake() in between must not have
        # its byte swallowed while the flag still says one is on its way.
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        self._woken = False

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            fn = calls.popleft()
            try:
                fn()
            except Exception:  # pragma: no cover - a bug in toad, kept off the user's loop
                logger.exception("internal error in toad's network loop")

    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, address = lsock.accept()
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    # The listener stays readable, so stop watching it a
                    # moment instead of spinning.
                    logger.warning("cannot accept connections for %g s: %s", _ACCEPT_PAUSE, exc)
                    self._pause_accepting()
                return  # ECONNABORTED and friends: that one connection is gone
            if self.stopping or self.on_accept is None:
                sock.close()
                continue
            if self.max_channels is not None and len(self.channels) >= self.max_channels:
                try:
                    sock.setblocking(False)
                    sock.send(_FULL_RESPONSE)
                except OSError:
                    pass
                sock.close()
                continue
            try:
                channel = self.on_accept(sock, address)
            except Exception:
                logger.exception("cannot set up a connection from %s", address)
                sock.close()
                continue
            if channel is None:
                sock.close()
            else:
                self.add_channel(channel)

    def _pause_accepting(self) -> None:
        if self._accept_resume:
            return  # another listener of this loop paused them all already
        self._accept_resume = monotonic() + _ACCEPT_PAUSE
        for lsock in self.listeners:
            self.selector.unregister(lsock)

    def _resume_accepting(self) -> None:
        self._accept_resume = 0.0
        for lsock in self.listeners:
            self.selector.register(lsock, _READ, lsock)

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop_deadline = monotonic() + self.limits.close_timeout
        for lsock in self.listeners:
            if not self._accept_resume:
                self.selector.unregister(lsock)
            lsock.close()
        self.listeners = []
        for channel in list(self.channels):
            state = channel.protocol.state
            if state is State.OPEN:
                channel.close(self._stop_code, self._stop_reason)
            elif state is State.CONNECTING:
                self.abort(channel, self._stop_reason or "the server stopped")
            # CLOSING and CLOSED channels finish their own closing, within the stop deadline.
        self.resume_reading()  # every peer's Close frame must be read now

    def _sweep(self, now: float) -> None:
        limits = self.limits
        if self._accept_resume and now >= self._accept_resume and not self.stopping:
            self._resume_accepting()
        for channel in list(self.channels):
            state = channel.protocol.state
            if state is State.CONNECTING:
                if now - channel.created > limits.handshake_timeout:
                    self.abort(channel, "the opening handshake timed out")
            elif state is State.CLOSED:
                if channel.finish_deadline and now > channel.finish_deadline:
                    self.close_channel(channel)
                elif not channel.finish_deadline:
                    channel.finish_deadline = now + limits.close_timeout
            elif channel.close_deadline and now > channel.close_deadline:
                self.abort(channel, "the closing handshake timed out")
            elif state is State.OPEN and limits.ping_interval is not None and not channel.paused:
                # (a paused channel is silent because toad is not reading it)
                if channel.ping_sent:
                    if limits.ping_timeout is not None and now - channel.ping_sent > limits.ping_timeout:
                        self.abort(channel, "the peer did not answer a keepalive ping in time")
                elif now - channel.last_recv > limits.ping_interval:
                    channel.ping_sent = now
                    with channel.lock:
                        channel.protocol.send_ping(b"toad")
                        channel._write(channel.protocol.data_to_send())
        if self.stopping and now > self._stop_deadline:
            for channel in list(self.channels):
                self.abort(channel, "the closing handshake timed out")

    def abort(self, channel: Channel, reason: str) -> None:
        """Drop a connection at once, without a closing handshake (close code 1006)."""
        with channel.lock:
            closed = channel.protocol.abort(reason)
        self.close_channel(channel, [closed] if closed is not None else [])

    def close_channel(self, channel: Channel, events: Sequence[Event] = ()) -> None:
        """Close the channel's socket, then hand ``events`` (its last) to the owner."""
        if not channel.closed:
            with channel.lock:
                channel.closed = True
                channel.out.clear()
                channel.out_size = 0
            self.channels.discard(channel)
            self.paused.discard(channel)
            if channel.interest:
                channel.interest = 0
                self.selector.unregister(channel.sock)
            try:
                channel.sock.close()
            except OSError:
                pass
        if events:
            self.owner._on_events(channel, list(events))

    def release(self) -> None:
        """Close every socket the loop still holds; it cannot run again."""
        # A Ctrl-C in the middle of close_channel can leave a socket behind: close it here.
        for key in list(self.selector.get_map().values()):
            if type(key.data) is Channel:
                key.data.sock.close()
        for lsock in self.listeners:
            lsock.close()
        self.listeners = []
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        self.stopped.set()


class _Held(threading.local):
    channels: list[Channel] | None = None  # the channels holding writes back on this thread


_held = _Held()


def hold_writes() -> bool:
    """Hold back this thread's writes until :func:`release_writes`; whether this call started holding.

    Each channel written to then keeps its frames and sends them all in one
    system call at the release (or sooner, past 64 KiB). Only for code that
    is sure to call :func:`release_writes` soon, in a ``finally``.
    """
    if _held.channels is not None:
        return False
    _held.channels = []
    return True


def release_writes() -> None:
    """Send what this thread held back since :func:`hold_writes`, one system call per channel."""
    held = _held.channels
    _held.channels = None
    if not held:
        return
    for channel in held:
        with channel.lock:
            channel._send_out()
        if not channel.out and channel.protocol.state is State.CLOSED:
            # The connection ended while its last bytes were held: finish it on the loop's thread.
            channel.loop.call_soon(channel._check_finished)


_background_loops: weakref.WeakSet[Loop] = weakref.WeakSet()


@atexit.register
def _stop_background_loops() -> None:
    # A game that exits (or dies of Ctrl-C) with block=False still says
    # goodbye: every peer gets a Close frame with 1001 instead of a dead socket.
    loops = [loop for loop in _background_loops if not loop.stopped.is_set()]
    for loop in loops:
        loop.stop(1001, "going away")
    deadline = monotonic() + 3.0
    for loop in loops:
        loop.stopped.wait(max(0.0, deadline - monotonic()))

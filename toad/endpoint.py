"""What a server and a client connection share: callbacks, the event queue, polling.

Threads: the network loop produces events; they reach the game's code only on
the game's thread. With ``block=True`` the loop runs on the caller's thread and
callbacks run as events arrive. With ``block=False`` the loop runs on its own
thread and only queues events; the game runs them with :meth:`Endpoint.poll`
(or any polling call: ``opens()``, ``messages()``, ``closes()``), which runs
the callbacks on the calling thread, in order.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar

from .errors import CallbackSignatureError, ConnectionLost, NetworkError, UsageError
from .messages import Binary, Text
from .network import Channel, Loop, hold_writes, release_writes
from .protocol import Closed, Opened
from .protocol import Event as ProtocolEvent

__all__ = ["CLOSE", "ERROR", "MESSAGE", "OPEN", "Endpoint", "Event"]

logger = logging.getLogger("toad")

OPEN = "open"
MESSAGE = "message"
ERROR = "error"
CLOSE = "close"
KINDS = (OPEN, MESSAGE, ERROR, CLOSE)

F = TypeVar("F", bound=Callable[..., Any])


class Event(NamedTuple):
    """One thing that happened, as :meth:`Endpoint.poll` hands it to the game.

    ``type`` is ``"open"``, ``"message"``, ``"error"`` or ``"close"``;
    ``source`` the :class:`~toad.Server` or :class:`~toad.Connection` it came
    from; ``client`` the client's object on a server (the Player that
    ``onopen`` returned, or the :class:`~toad.Client`) and ``None`` on a client
    connection; ``data`` the message, the exception, or for ``"close"`` the
    ``(code, reason)`` pair (1005 when the peer gave no code, 1006 when the
    connection was lost); ``None`` for ``"open"``.
    """

    type: str
    source: Any
    client: Any
    data: Any


class Endpoint:
    """The callback registry and event queue of a server or client connection."""

    #: For each kind of callback: how many arguments toad passes, and how it calls it.
    _SIGNATURES: ClassVar[dict[str, tuple[int, str]]] = {}
    _ROLE: ClassVar[str] = ""

    def __init__(self, max_queue: int, max_queue_size: int) -> None:
        #: Messages (and bytes of them) from one peer that may wait for the game
        #: before toad stops reading that peer until the game catches up.
        for name, value in (("max_queue", max_queue), ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a whole number of 1 or more, not {value!r}")
        self.max_queue = max_queue
        self.max_queue_size = max_queue_size
        self._loop: Loop | None = None
        self._crash_reported = False
        self._callbacks: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in KINDS}
        self._queue: deque[tuple[str, Any, Any]] = deque()
        self._ready = threading.Event()
        self._signalled = False
        self._inline = False  # block=True: the loop runs on the caller's thread, callbacks at once
        self._pumping = False
        self._callback_errors: list[Event] = []
        # Polling results: what arrived since the game last asked for each kind.
        self._lists: dict[str, list[Any]] = {OPEN: [], MESSAGE: [], CLOSE: []}
        self._taken = dict.fromkeys(self._lists, True)
        self._asked: set[str] = set()

    # -- callbacks -------------------------------------------------------------

    def onopen(self, fn: F) -> F:
        """Register a callback for a new connection (a decorator; several run in order)."""
        return self._register(OPEN, fn)

    def onmessage(self, fn: F) -> F:
        """Register a callback for each message; returning ``False`` closes the connection."""
        return self._register(MESSAGE, fn)

    def onerror(self, fn: F) -> F:
        """Register a callback for errors: a callback that raised, or a peer that broke the protocol."""
        return self._register(ERROR, fn)

    def onclose(self, fn: F) -> F:
        """Register a callback for a connection that closed."""
        return self._register(CLOSE, fn)

    def _register(self, kind: str, fn: F) -> F:
        self._check_signature(kind, fn)
        self._callbacks[kind].append(fn)
        return fn

    def _check_signature(self, kind: str, fn: Callable[..., Any]) -> None:
        nargs, usage = self._SIGNATURES[kind]
        if not callable(fn):
            raise CallbackSignatureError(f"on{kind} needs a function, not {fn!r}: write @on{kind} above a def {usage}")
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # some built-ins have no signature to check
            return
        try:
            sig.bind(*range(nargs))
        except TypeError:
            name = getattr(fn, "__qualname__", repr(fn))
            raise CallbackSignatureError(
                f"on{kind} callback {name}{sig} cannot take {nargs} argument"
                f"{'' if nargs == 1 else 's'}: a {self._ROLE} calls it as {usage}"
            ) from None

    def _share_callbacks(self, callbacks: dict[str, list[Callable[..., Any]]]) -> None:
        # The module-level decorators register into one dict that the default
        # instance uses as its own; check what is there already.
        for kind, fns in callbacks.items():
            for fn in fns:
                self._check_signature(kind, fn)
        self._callbacks = callbacks

    def _run_callbacks(self, kind: str, who: Any, args: tuple[Any, ...]) -> list[Any]:
        """Call every ``kind`` callback with ``args``; a callback that raises goes to onerror."""
        results = []
        for fn in self._callbacks[kind]:
            try:
                results.append(fn(*args))
            except Exception as exc:
                self._callback_failed(kind, fn, who, exc)
        return results

    def _run_onmessage(self, who: Any, args: tuple[Any, ...]) -> bool:
        """Call every onmessage callback with ``args``; whether one of them returned ``False``."""
        close = False
        for fn in self._callbacks[MESSAGE]:
            try:
                if fn(*args) is False:
                    close = True
            except Exception as exc:
                self._callback_failed(MESSAGE, fn, who, exc)
        return close

    def _callback_failed(self, kind: str, fn: Callable[..., Any], who: Any, exc: Exception) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        logger.error("the on%s callback %s raised %r", kind, name, exc, exc_info=exc)
        if kind == ERROR:
            return  # an onerror that raises is only logged, or it would loop
        if self._pumping:
            # poll() hands the game an ERROR event too, right after the event whose callback raised.
            self._callback_errors.append(Event(ERROR, self, who, exc))
        self._deliver_error(who, exc)

    def _deliver_error(self, who: Any, exc: BaseException) -> None:
        raise NotImplementedError

    # -- the loop's side ---------------------------------------------------------

    def _emit(self, kind: str, channel: Channel, data: Any) -> None:
        """Hand an event to the game: at once with block=True, else through the queue."""
        if self._inline:
            self._dispatch(kind, channel, data, False)
            return
        if kind is MESSAGE:
            channel.queued_in += 1
            channel.queued_bytes_in += len(data)
        self._queue.append((kind, channel, data))
        loop = self._loop
        if not self._signalled and (loop is None or not loop.in_turn):
            self._signalled = True
            self._ready.set()

    def _turn_done(self) -> None:
        # Called by the network loop at the end of each turn: wake the game's
        # thread once for everything the turn queued, not once per event, so
        # the two threads do not take the interpreter from each other mid-turn.
        if self._queue and not self._signalled:
            self._signalled = True
            self._ready.set()

    def _backlogged(self, channel: Channel) -> bool:
        # Called by the network loop before it reads from ``channel``.
        return (
            channel.queued_in - channel.queued_out >= self.max_queue
            or channel.queued_bytes_in - channel.queued_bytes_out >= self.max_queue_size
        )

    def _on_events(self, channel: Any, events: list[ProtocolEvent]) -> None:
        # Called by the network loop, on its thread, with one connection's events.
        for event in events:
            kind = type(event)
            if kind is Text or kind is Binary:
                self._emit(MESSAGE, channel, event)
            elif kind is Opened:
                self._opened(channel, event)  # type: ignore[arg-type]
            elif kind is Closed:
                if channel.user is None:
                    logger.debug("a connection from %s closed before it opened: %s", channel.address, event)
                    continue
                error = event.error  # type: ignore[union-attr]
                if error is not None:
                    self._emit(ERROR, channel, error)
                elif event.code == 1006:  # type: ignore[union-attr]
                    self._emit(ERROR, channel, ConnectionLost(event.reason or "the connection was lost"))  # type: ignore[union-attr]
                self._emit(CLOSE, channel, event)
            # Ping and Pong need nothing from the game: the protocol answered already.

    def _opened(self, channel: Any, event: Opened) -> None:
        raise NotImplementedError

    def _dispatch(self, kind: str, channel: Any, data: Any, record: bool) -> Event | None:
        raise NotImplementedError

    # -- the game's side -------------------------------------------------------

    def poll(self, limit: int | None = None) -> list[Event]:
        """Run the callbacks for everything that arrived, on this thread; never blocks.

        Returns the events it handled, in order (at most ``limit`` of them; the
        rest wait for the next call), each followed by an ``"error"`` event
        for each of its callbacks that raised. What it handles is also kept for
        ``opens()``, ``messages()`` and ``closes()`` until the game asks for
        them. Call it once per frame with ``block=False``.
        """
        return self._pump(limit)

    def wait_events(self, timeout: float | None = None) -> bool:
        """Block until an event is waiting for :meth:`poll`, or ``timeout`` seconds pass.

        Returns whether an event is waiting. Lets a server without a frame
        loop sleep until there is something to do.
        """
        if self._queue:
            return True
        self._ready.wait(timeout)
        return bool(self._queue)

    def _pump(self, limit: int | None = None) -> list[Event]:
        if self._pumping:
            return []  # a callback called poll(): the outer call handles the rest
        loop = self._loop
        if loop is not None and loop.crashed is not None and not self._crash_reported:
            self._crash_reported = True
            raise NetworkError(f"toad's network loop stopped: {loop.crashed!r}") from loop.crashed
        self._pumping = True
        # What the callbacks send goes out when this poll ends, one system call per connection.
        holding = hold_writes()
        try:
            lists = self._lists
            for kind, items in lists.items():
                # A kind the game never asked for is kept one poll only.
                if items and kind not in self._asked:
                    items.clear()
                self._taken[kind] = False
            # Clear the event before the flag: an _emit in between then sees
            # the flag still up and skips set(), but its event is drained below.
            self._ready.clear()
            self._signalled = False
            handled: list[Event] = []
            queue = self._queue
            dispatch = self._dispatch
            resume = False
            while queue and (limit is None or len(handled) < limit):
                kind, channel, data = queue.popleft()
                if kind is MESSAGE:
                    channel.queued_out += 1
                    channel.queued_bytes_out += len(data)
                    resume = resume or channel.paused
                event = dispatch(kind, channel, data, True)
                if event is not None:
                    handled.append(event)
                if self._callback_errors:
                    handled += self._callback_errors
                    self._callback_errors.clear()
            if resume and loop is not None:
                loop.call_next(loop.resume_reading)
            if queue:
                self._signalled = True
                self._ready.set()
            return handled
        finally:
            if holding:
                release_writes()
            self._pumping = False

    def _take(self, kind: str) -> list[Any]:
        # Pump only when the game already took this kind since the last pump,
        # so opens() then messages() in one frame read one consistent batch.
        self._asked.add(kind)
        if self._taken[kind]:
            self._pump()
        self._taken[kind] = True
        items = self._lists[kind]
        if not items:
            return []
        result = items[:]
        items.clear()
        return result

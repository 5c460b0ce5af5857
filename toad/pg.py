"""toad's events in pygame-ce's event queue, beside KEYDOWN and QUIT, none lost.

Needs pygame-ce (``pip install "toad-ws[pygame]"``); ``import toad`` alone
never imports pygame. One call per frame, before ``pygame.event.get()``::

    import pygame
    import toad
    import toad.pg

    pygame.init()
    server = toad.pg.attach(toad.Server())
    server.start("0.0.0.0", 8001, block=False)
    while True:
        toad.pg.pump()
        for event in pygame.event.get():
            if event.type == toad.pg.MESSAGE:
                print(event.client, event.message)
            elif event.type == pygame.QUIT:
                ...

The event types, registered with ``pygame.event.custom_type()``, and what
each event carries:

============  ==================================================================
``OPEN``      ``source``, ``client``
``MESSAGE``   ``source``, ``client``, ``message`` (a :class:`~toad.Text` or
              :class:`~toad.Binary`, as ``onmessage`` gets it)
``ERROR``     ``source``, ``client``, ``error``: the exception one of your
              callbacks raised (right after the event it was handling; the
              connection goes on), or a :class:`~toad.ProtocolError` from a
              peer that broke the protocol or :class:`~toad.ConnectionLost`
              (a ``CLOSE`` follows these two), or the
              :class:`~toad.ConnectionFailed` of a reconnecting connection
              that gave up (its ``CLOSE`` came when the connection was lost)
``CLOSE``     ``source``, ``client``, ``code`` (an ``int``: the peer's close
              code, 1005 if it gave none, 1006 if the connection was lost) and
              ``reason`` (a ``str``, maybe empty)
============  ==================================================================

``source`` is the :class:`~toad.Server` or :class:`~toad.Connection` the event
came from, so a game that hosts and joins in one process tells the two apart
with ``event.source is server``. ``client`` is, on a server, what the seed's
callbacks get: the object ``onopen`` returned (a Player) or the
:class:`~toad.Client`; on a client connection it is ``None``. :data:`TYPES`
holds the four types.

Which endpoints: every one passed to :func:`attach`, and the module-level
default server and connection (``toad.start_server()``, ``toad.open()``),
which :func:`pump` picks up by itself. Start them with ``block=False``.

Threads and callbacks: :func:`pump` calls each endpoint's ``poll()`` on the
game's thread, so ``onmessage`` and the other callbacks still run, there, as
each event is handed over; callbacks and pygame events can be mixed. Do not
also call ``poll()``, ``messages()``, ``opens()`` or ``closes()`` on an
attached endpoint: what they take, the bridge does not see.

Nothing is lost or reordered. :func:`pump` posts at most ``limit`` events per
call, and none while toad events it posted earlier are still in pygame's
queue: toad never fills the queue (65,535 events), so SDL always has room
for the keyboard, the mouse and QUIT. An event that does not fit (the game
posted many of its own) waits in the bridge and is posted first next frame;
what the bridge has not taken waits in toad, whose ``max_queue`` then slows
the peer down through TCP. Each endpoint's events keep their order; events of
different endpoints interleave.

What is not posted: events of a type the game blocked with
``pygame.event.set_blocked()`` (pygame drops those, as it drops any blocked
event; the callbacks still ran); and the closes
that ``Server.stop()`` handles itself while it shuts a server down (it runs
their ``onclose`` callbacks before it returns).

Sending needs nothing from the bridge: ``client.send()``, ``broadcast()`` and
``conn.send()`` never block a frame.
"""

from __future__ import annotations

from collections import deque
from typing import TypeVar

import pygame

from . import defaults
from .client import Connection
from .endpoint import CLOSE as _CLOSE
from .endpoint import MESSAGE as _MESSAGE
from .endpoint import OPEN as _OPEN
from .endpoint import Event
from .errors import UsageError
from .server import Server

__all__ = ["CLOSE", "DEFAULT_LIMIT", "ERROR", "MESSAGE", "OPEN", "TYPES", "attach", "attached", "detach", "pump"]

#: A connection opened: ``source``, ``client``.
OPEN: int = pygame.event.custom_type()
#: A message arrived: ``source``, ``client``, ``message``.
MESSAGE: int = pygame.event.custom_type()
#: A peer broke the protocol or the connection was lost: ``source``, ``client``, ``error``.
ERROR: int = pygame.event.custom_type()
#: A connection closed: ``source``, ``client``, ``code``, ``reason``.
CLOSE: int = pygame.event.custom_type()
#: The four event types, for ``event.type in toad.pg.TYPES`` or ``pygame.event.set_allowed()``.
TYPES: tuple[int, int, int, int] = (OPEN, MESSAGE, ERROR, CLOSE)

#: How many events :func:`pump` posts per call unless told otherwise.
DEFAULT_LIMIT = 4096

E = TypeVar("E", Server, Connection)

_PygameEvent = pygame.event.Event
_post = pygame.event.post
_peek = pygame.event.peek


class _Bridge:
    """What the bridge keeps between frames; one per process, as pygame has one event queue."""

    def __init__(self) -> None:
        self.endpoints: list[Server | Connection] = []
        # Events taken from toad that pygame's queue had no room for, in order.
        self.pending: deque[pygame.event.Event] = deque()
        # The defaults already picked up, so a detach() of one sticks.
        self.seen_server: Server | None = None
        self.seen_connection: Connection | None = None
        self.start = 0  # which endpoint polls first, turn about, so none starves the others
        self.pumping = False


_bridge = _Bridge()


def attach(endpoint: E) -> E:
    """Post ``endpoint``'s events to pygame's queue from now on, at each :func:`pump`.

    ``endpoint`` is a :class:`~toad.Server` or :class:`~toad.Connection`,
    started or not (start it with ``block=False``). Returns it, so
    ``server = toad.pg.attach(toad.Server())`` works. Attaching twice does
    nothing more. The default server and connection need no attach.
    """
    if not isinstance(endpoint, (Server, Connection)):
        raise UsageError(
            f"toad.pg.attach() takes a toad.Server or a toad.Connection, not {endpoint!r}: "
            "attach the object whose events the game wants"
        )
    if not any(e is endpoint for e in _bridge.endpoints):
        _bridge.endpoints.append(endpoint)
    return endpoint


def detach(endpoint: Server | Connection) -> None:
    """Stop posting ``endpoint``'s events (a default one too); what was already posted stays.

    Events the bridge took from it but had no room for yet are still posted.
    Detaching an endpoint that is not attached does nothing.
    """
    _bridge.endpoints = [e for e in _bridge.endpoints if e is not endpoint]
    if endpoint is defaults._server:
        _bridge.seen_server = endpoint
    if endpoint is defaults._connection:
        _bridge.seen_connection = endpoint


def attached() -> list[Server | Connection]:
    """The endpoints :func:`pump` polls, in the order they were attached (or picked up)."""
    _pick_up_defaults()
    return list(_bridge.endpoints)


def pump(limit: int = DEFAULT_LIMIT) -> int:
    """Move toad's events into pygame's queue; call it once per frame, before ``pygame.event.get()``.

    Runs the callbacks of every attached endpoint (on this thread) for what
    it takes, and posts one pygame event per toad event, in order. Posts at
    most ``limit`` events, and none while toad events posted by an earlier
    call are still in pygame's queue; what waits is posted by a later call,
    first. Never blocks. Returns how many events it posted.

    Needs pygame's event queue (``pygame.init()`` or ``pygame.display.init()``)
    and raises :class:`~toad.UsageError` without it. Re-raises
    :class:`~toad.NetworkError` if an endpoint's network loop crashed, as
    ``poll()`` does. Called from a callback it returns 0 at once.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UsageError(f"toad.pg.pump(limit) needs a whole number of 1 or more, not {limit!r}")
    if not pygame.display.get_init():
        raise UsageError(
            "toad.pg.pump() needs pygame's event queue: call pygame.init() (or pygame.display.init()) first"
        )
    bridge = _bridge
    if bridge.pumping:
        return 0  # a callback called pump(): the outer call goes on with the rest
    bridge.pumping = True
    try:
        _pick_up_defaults()
        pending = bridge.pending
        posted = 0
        while pending and posted < limit:
            if not _try_post(pending[0]):
                return posted
            pending.popleft()
            posted += 1
        if posted or _peek(TYPES, pump=False):
            # The game has not taken the last batch yet (or is taking this one):
            # posting more would let a stalled game's queue fill up to SDL's limit.
            return posted
        endpoints = bridge.endpoints
        count = len(endpoints)
        first = bridge.start % count if count else 0
        bridge.start = first + 1
        budget = limit
        for i in range(count):
            endpoint = endpoints[(first + i) % count]
            events = endpoint.poll(budget)
            if not events:
                continue
            budget -= len(events)
            done = _post_all(events, pending)
            posted += done
            if pending or budget <= 0:
                break
        return posted
    finally:
        bridge.pumping = False


def _pick_up_defaults() -> None:
    # Read the module's globals, not toad.default_server(), which raises when there
    # is none: this runs every frame in games that never use the defaults.
    bridge = _bridge
    server = defaults._server
    if server is not None and server is not bridge.seen_server:
        bridge.seen_server = server
        attach(server)
    connection = defaults._connection
    if connection is not None and connection is not bridge.seen_connection:
        bridge.seen_connection = connection
        attach(connection)


def _try_post(event: pygame.event.Event) -> bool:
    """Post ``event``; ``False`` if pygame's queue has no room for it now."""
    try:
        # False from post() means the game blocked this type: pygame drops it, by the game's choice.
        _post(event)
    except pygame.error:
        # The queue is full (display.get_init() was checked): SDL's only other
        # failure is running out of memory, which may also pass. Try next frame.
        return False
    return True


def _post_all(events: list[Event], pending: deque[pygame.event.Event]) -> int:
    """Post ``events`` in order; from the first that does not fit, keep the rest in ``pending``."""
    # Every event is converted now, not when it is posted: a CLOSE's code is read
    # before the endpoint could be reopened, and client_of() forgets a player at the next poll.
    converted = [_convert(event) for event in events]
    posted = 0
    try:
        for pg_event in converted:
            # False from post() means the game blocked this type: pygame drops it, by the game's choice.
            _post(pg_event)
            posted += 1
    except pygame.error:
        pending.extend(converted[posted:])  # the queue is full: see _try_post()
    return posted


def _convert(event: Event) -> pygame.event.Event:
    kind = event.type
    source = event.source
    if kind == _MESSAGE:
        return _PygameEvent(MESSAGE, source=source, client=event.client, message=event.data)
    if kind == _OPEN:
        return _PygameEvent(OPEN, source=source, client=event.client)
    if kind == _CLOSE:
        code, reason = event.data
        return _PygameEvent(CLOSE, source=source, client=event.client, code=code, reason=reason)
    return _PygameEvent(ERROR, source=source, client=event.client, error=event.data)

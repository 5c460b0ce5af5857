"""toad: WebSockets for pygame-ce game jams.

A server in five lines::

    import toad

    @toad.onmessage
    def onmessage(client, message):
        client.send(message)

    toad.start_server(host="localhost", port=8001)

The module-level functions drive a default :class:`Server` and a default
:class:`Connection`; create the objects yourself for several of either, or
for a server and a client in one program. See the README for the threading
rules: callbacks only ever run on your own thread.
"""

from __future__ import annotations

from .client import Connection
from .defaults import (
    broadcast,
    clients,
    close,
    closes,
    default_connection,
    default_server,
    isopen,
    messages,
    onclose,
    onerror,
    onmessage,
    onopen,
    open,
    opens,
    poll,
    send,
    start_server,
    stop_server,
    wait_events,
)
from .endpoint import Event
from .errors import (
    AddressInUse,
    AmbiguousCall,
    CallbackSignatureError,
    ConnectionFailed,
    ConnectionLost,
    InvalidAddress,
    InvalidCloseCode,
    InvalidHandshake,
    InvalidMessage,
    InvalidURL,
    MessageTooBig,
    NetworkError,
    NotConnected,
    PeerError,
    ProtocolError,
    ToadError,
    TooManyMessages,
    UsageError,
)
from .frames import CloseCode
from .messages import Binary, Text
from .server import Client, Server

__version__ = "0.1.0"

__all__ = [
    "AddressInUse",
    "AmbiguousCall",
    "Binary",
    "CallbackSignatureError",
    "Client",
    "CloseCode",
    "Connection",
    "ConnectionFailed",
    "ConnectionLost",
    "Event",
    "InvalidAddress",
    "InvalidCloseCode",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidURL",
    "MessageTooBig",
    "TooManyMessages",
    "NetworkError",
    "NotConnected",
    "PeerError",
    "ProtocolError",
    "Server",
    "Text",
    "ToadError",
    "UsageError",
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

"""Every exception toad raises, in one tree under :class:`ToadError`.

The tree separates three kinds of trouble so that a game can catch the one it
cares about::

    ToadError
    ├── UsageError            you misused the API (fix your code)
    │   ├── InvalidURL
    │   ├── InvalidAddress
    │   ├── CallbackSignatureError
    │   ├── AmbiguousCall
    │   ├── NotConnected
    │   ├── InvalidMessage    send() got something that is not str or bytes
    │   └── InvalidCloseCode  close() got a code or reason that cannot be sent
    ├── PeerError             the other side misbehaved
    │   ├── ProtocolError     carries the close code toad sent (1002, 1007, 1009 ...)
    │   │   ├── InvalidHandshake
    │   │   └── MessageTooBig
    └── NetworkError          the network or the machine got in the way
        ├── ConnectionFailed  could not connect (refused, DNS, TLS, timeout)
        ├── AddressInUse      the server's port is taken
        └── ConnectionLost    the connection ended without a closing handshake

Messages are lower-case sentences that say what to do, like the rest of toad's
words to its users.
"""

from __future__ import annotations

from .frames import CloseCode

__all__ = [
    "AddressInUse",
    "AmbiguousCall",
    "CallbackSignatureError",
    "ConnectionFailed",
    "ConnectionLost",
    "InvalidAddress",
    "InvalidCloseCode",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidURL",
    "MessageTooBig",
    "NetworkError",
    "NotConnected",
    "PeerError",
    "ProtocolError",
    "ToadError",
    "UsageError",
]


class ToadError(Exception):
    """The base of every exception toad raises on purpose."""


# -- you misused the API ------------------------------------------------------


class UsageError(ToadError):
    """The program called toad in a way that cannot work; the message says how to fix it."""


class InvalidURL(UsageError, ValueError):
    """A URL toad cannot connect to (wrong scheme, no host, bad port)."""


class InvalidAddress(UsageError, ValueError):
    """A host or port a server cannot listen on."""


class CallbackSignatureError(UsageError, TypeError):
    """A callback cannot take the arguments toad will call it with."""


class AmbiguousCall(UsageError):
    """A module-level call could mean the default server or the default client."""


class NotConnected(UsageError):
    """A module-level client call was made before ``toad.open()``."""


class InvalidMessage(UsageError, TypeError):
    """A message to send that is neither ``str`` nor bytes-like."""


class InvalidCloseCode(UsageError, ValueError):
    """A close code that may not be sent, or a reason longer than a Close frame holds."""


# -- the other side misbehaved ------------------------------------------------


class PeerError(ToadError):
    """The other side of a connection broke the rules."""


class ProtocolError(PeerError):
    """The peer violated RFC 6455; toad failed the connection with ``close_code``."""

    def __init__(self, message: str, close_code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code


class InvalidHandshake(ProtocolError):
    """The opening handshake (RFC 6455 section 4) was not valid.

    ``status`` is the HTTP status a server answered with (or received, on the
    client side); 0 when no response was involved.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, CloseCode.PROTOCOL_ERROR)
        self.status = status


class MessageTooBig(ProtocolError):
    """A message was larger than ``max_message_size`` (close code 1009)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CloseCode.MESSAGE_TOO_BIG)


class TooManyMessages(ProtocolError):
    """A client sent messages faster than the server's ``max_messages_per_second`` (close code 1008)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CloseCode.POLICY_VIOLATION)


# -- the network got in the way -----------------------------------------------


class NetworkError(ToadError):
    """The network or the operating system got in the way."""


class ConnectionFailed(NetworkError):
    """A client could not open its connection (refused, DNS, TLS, handshake, timeout)."""


class AddressInUse(NetworkError):
    """The port a server tried to listen on is already taken."""


class ConnectionLost(NetworkError):
    """The connection ended without a closing handshake (close code 1006)."""

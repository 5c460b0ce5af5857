"""RFC 6455 section 4: the opening handshake, for both sides, on bytes.

Parsing and building HTTP/1.1 upgrade requests and responses. No sockets: the
caller hands in the bytes up to and including the blank line that ends the
head, and gets back parsed values or an :class:`~toad.errors.InvalidHandshake`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .errors import InvalidHandshake

__all__ = [
    "GUID",
    "Headers",
    "Request",
    "Response",
    "accept_key",
    "build_request",
    "build_response",
    "check_request",
    "check_response",
    "generate_key",
    "parse_request",
    "parse_response",
]

#: The GUID of section 1.3, appended to the key to compute Sec-WebSocket-Accept.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Headers:
    """HTTP header fields: case-insensitive names, several values per name, order kept."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``, or ``default``."""
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of the fields called ``name``, in order."""
        lname = name.lower()
        return [value for key, value in self._items if key.lower() == lname]

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every ``name`` field, lower-cased (RFC 7230 section 7)."""
        return [t.strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request(NamedTuple):
    """A parsed opening-handshake request."""

    method: str
    path: str
    headers: Headers


class Response(NamedTuple):
    """A parsed opening-handshake response."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""


def generate_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64-encoded (section 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for ``key`` (section 4.2.2, step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _parse_head(data: bytes) -> tuple[str, Headers]:
    try:
        text = data.decode("iso-8859-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise InvalidHandshake("the handshake is not text") from exc
    lines = text.split("\r\n")
    start = lines[0]
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise InvalidHandshake("obsolete folded header lines are not allowed")
        name, sep, value = line.partition(":")
        if not sep or not name or not _TOKEN_CHARS.issuperset(name):
            raise InvalidHandshake(f"malformed header line {line[:60]!r}")
        items.append((name, value.strip(" \t")))
    return start, Headers(items)


def parse_request(data: bytes) -> Request:
    """Parse a request head (everything before and including the blank line)."""
    start, headers = _parse_head(data)
    parts = start.split(" ")
    if len(parts) != 3:
        raise InvalidHandshake(f"malformed request line {start[:60]!r}")
    method, path, version = parts
    if version != "HTTP/1.1":
        # Section 4.1: the request MUST be HTTP/1.1 or higher.
        raise InvalidHandshake(f"unsupported HTTP version {version[:20]!r}", status=505)
    return Request(method, path, headers)


def parse_response(data: bytes) -> Response:
    """Parse a response head (everything before and including the blank line).

    An :class:`InvalidHandshake` from here has ``status`` 0: the response
    could not be read, so it has no status to report.
    """
    try:
        start, headers = _parse_head(data)
    except InvalidHandshake as exc:
        raise InvalidHandshake(str(exc), status=0) from None
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdecimal() and len(parts[1]) == 3):
        raise InvalidHandshake(f"malformed status line {start[:60]!r}", status=0)
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


def check_request(
    request: Request,
    subprotocols: Sequence[str] = (),
    origins: Sequence[str] | None = None,
) -> tuple[str, str | None]:
    """Validate a client's opening handshake (section 4.2.1).

    Returns the Sec-WebSocket-Accept value and the chosen subprotocol (the
    first one the client offers that the server supports), or raises
    :class:`InvalidHandshake` with the HTTP status to answer.
    """
    if request.method != "GET":
        raise InvalidHandshake("the opening handshake must be a GET request", status=405)
    headers = request.headers
    if "host" not in headers:
        raise InvalidHandshake("missing Host header")
    if "websocket" not in headers.tokens("Upgrade"):
        raise InvalidHandshake(
            "this is a WebSocket server: connect with a WebSocket client (missing Upgrade: websocket)",
            status=426,
        )
    if "upgrade" not in headers.tokens("Connection"):
        raise InvalidHandshake("missing Connection: Upgrade header", status=426)
    versions = headers.get_all("Sec-WebSocket-Version")
    if versions != ["13"]:
        raise InvalidHandshake("unsupported Sec-WebSocket-Version: only 13 is supported", status=426)
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise InvalidHandshake("missing or repeated Sec-WebSocket-Key header")
    key = keys[0]
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidHandshake("Sec-WebSocket-Key is not 16 base64-encoded bytes")
    if origins is not None:
        origin = headers.get("Origin")
        if origin not in origins:
            raise InvalidHandshake(f"origin {origin!r} is not allowed", status=403)
    chosen = None
    if subprotocols:
        offered = [t.strip() for v in headers.get_all("Sec-WebSocket-Protocol") for t in v.split(",")]
        for proto in offered:
            if proto in subprotocols:
                chosen = proto
                break
    return accept_key(key), chosen


def build_response(
    status: int,
    reason: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """Serialize an HTTP/1.1 response head and body."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if status != 101:
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body


def build_request(
    host: str,
    port: int,
    path: str,
    key: str,
    *,
    secure: bool = False,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Serialize a client's opening handshake (section 4.1)."""
    default_port = 443 if secure else 80
    host_value = host if ":" not in host else f"[{host}]"
    if port != default_port:
        host_value = f"{host_value}:{port}"
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_value}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")


def check_response(response: Response, key: str, subprotocols: Sequence[str] = ()) -> str | None:
    """Validate a server's handshake response (section 4.1, the client's checks).

    Returns the subprotocol the server chose, or raises :class:`InvalidHandshake`.
    """
    if response.status != 101:
        raise InvalidHandshake(
            f"the server answered HTTP {response.status} {response.reason} instead of "
            "switching to WebSocket: check the URL and that a WebSocket server listens there",
            status=response.status,
        )
    headers = response.headers
    if "websocket" not in headers.tokens("Upgrade"):
        raise InvalidHandshake("the server's response lacks Upgrade: websocket", status=101)
    if "upgrade" not in headers.tokens("Connection"):
        raise InvalidHandshake("the server's response lacks Connection: Upgrade", status=101)
    if headers.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise InvalidHandshake("the server's Sec-WebSocket-Accept does not match the key", status=101)
    if headers.get_all("Sec-WebSocket-Extensions"):
        # Section 4.1: an extension the client did not ask for MUST fail the connection.
        raise InvalidHandshake("the server chose an extension that toad did not offer", status=101)
    chosen = headers.get_all("Sec-WebSocket-Protocol")
    if not chosen:
        return None
    if len(chosen) != 1 or chosen[0] not in subprotocols:
        raise InvalidHandshake(f"the server chose a subprotocol toad did not offer: {chosen!r}", status=101)
    return chosen[0]

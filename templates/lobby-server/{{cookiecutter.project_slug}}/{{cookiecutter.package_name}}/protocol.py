"""The wire format: every message is one JSON object in a text frame, with a "type" string.

Pure: no sockets, threads or clocks. :func:`decode` checks one incoming message field by field and
returns a request object, or raises :class:`ProtocolError` carrying the error code the client gets
back. :func:`encode` turns an outgoing message dict into compact JSON text.

Unknown extra fields are ignored, so a newer client still talks to this server.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 4096  # a larger message gets "too_large" (toad itself closes past 65536 bytes)
NAME_LENGTH = (1, 16)
ROOM_NAME_LENGTH = (1, 24)
CHAT_LENGTH = (1, 200)
TOKEN_LENGTH = 64  # tokens we hand out are 22 characters; anything much longer is not ours
MAX_SEQ = 2**53 - 1  # the largest whole number every JSON reader (JavaScript's too) keeps exact
# Characters that draw nothing by themselves: combining marks (Mn, Me), format characters such as
# zero-width spaces (Cf), controls (Cc), lone surrogates (Cs) and spaces (Zs, Zl, Zp). A name made of
# these alone would be invisible, and pygame refuses to render it ("Text has zero width").
INVISIBLE = frozenset({"Mn", "Me", "Cf", "Cc", "Cs", "Zs", "Zl", "Zp"})
ZWJ = "\u200d"  # the zero-width joiner: the one format character a name may hold (emoji sequences)


class ProtocolError(Exception):
    """A request the server refuses: becomes an ``error`` message with this code and sentence.

    ``about`` is the type of the offending message, when it had a known one.
    """

    def __init__(self, code: str, message: str, about: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.about = about

    def to_message(self) -> dict[str, Any]:
        """The ``error`` message for the client."""
        return {"type": "error", "code": self.code, "message": self.message, "about": self.about}


@dataclass(frozen=True)
class Hello:
    name: str
    token: str | None = None


@dataclass(frozen=True)
class Create:
    name: str
    capacity: int | None = None  # None: the largest room the server allows
    private: bool = False


@dataclass(frozen=True)
class Join:
    room: str | None = None  # a room id, or
    code: str | None = None  # a room's code, upper case


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class Ready:
    ready: bool


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Chat:
    text: str


@dataclass(frozen=True)
class Kick:
    player: str  # the id of the member the host sends away


@dataclass(frozen=True)
class Input:
    seq: int
    data: dict[str, Any]  # the game checks what is inside


Request = Hello | Create | Join | Leave | Ready | Start | Kick | Chat | Input


def decode(message: str | bytes) -> Request:
    """Check one message from a client and return it as a request; raise :class:`ProtocolError` if bad."""
    if isinstance(message, bytes):
        raise ProtocolError("bad_json", "Binary frames are not accepted: send JSON as text.")
    # Characters never outnumber UTF-8 bytes, so only a short-enough text needs encoding to be measured.
    if len(message) > MAX_MESSAGE_BYTES or len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        raise ProtocolError("bad_json", "That message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", 'A message must be a JSON object, like {"type": "hello", "name": "Ana"}.')
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", 'A message needs a "type" string.')
    parse = _PARSERS.get(kind)
    if parse is None:
        # The type is echoed through repr() and cut short: it is the client's text, not ours.
        raise ProtocolError("unknown_type", f"Unknown message type {kind[:32]!r}.")
    return parse(data)


def encode(message: dict[str, Any]) -> str:
    """The compact JSON text of an outgoing message."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


# -- the fields of each request -----------------------------------------------------------


def _hello(data: dict[str, Any]) -> Hello:
    token = data.get("token")
    if token is not None and not (isinstance(token, str) and len(token) <= TOKEN_LENGTH):
        raise ProtocolError("bad_message", "hello's token must be the string the server gave you.", "hello")
    return Hello(_name(data, "name", "hello", NAME_LENGTH), token)


def _create(data: dict[str, Any]) -> Create:
    capacity = data.get("capacity")
    if capacity is not None and not _is_int(capacity):
        raise ProtocolError("bad_message", "create's capacity must be a whole number.", "create")
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise ProtocolError("bad_message", "create's private must be true or false.", "create")
    return Create(_name(data, "name", "create", ROOM_NAME_LENGTH), capacity, private)


def _join(data: dict[str, Any]) -> Join:
    room, code = data.get("room"), data.get("code")
    if (room is None) == (code is None) or not isinstance(room if code is None else code, str):
        raise ProtocolError("bad_message", 'join needs "room" (a room id) or "code" (a room code) as a string.', "join")
    return Join(room, code.strip().upper() if code is not None else None)


def _ready(data: dict[str, Any]) -> Ready:
    ready = data.get("ready")
    if not isinstance(ready, bool):
        raise ProtocolError("bad_message", "ready needs ready: true or false.", "ready")
    return Ready(ready)


def _kick(data: dict[str, Any]) -> Kick:
    player = data.get("player")
    if not isinstance(player, str):
        raise ProtocolError("bad_message", 'kick needs "player": the id of a player in your room.', "kick")
    return Kick(player)


def _chat(data: dict[str, Any]) -> Chat:
    return Chat(_text(data, "text", "chat", CHAT_LENGTH))


def _input(data: dict[str, Any]) -> Input:
    seq, body = data.get("seq"), data.get("input")
    if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise ProtocolError("bad_message", f"input needs seq: a whole number from 0 to {MAX_SEQ}.", "input")
    if not isinstance(body, dict):
        raise ProtocolError("bad_message", "input needs input: an object.", "input")
    return Input(seq, body)


_PARSERS: dict[str, Callable[[dict[str, Any]], Request]] = {
    "hello": _hello,
    "create": _create,
    "join": _join,
    "leave": lambda data: Leave(),
    "ready": _ready,
    "start": lambda data: Start(),
    "kick": _kick,
    "chat": _chat,
    "input": _input,
}

#: The message types a client may send.
TYPES = frozenset(_PARSERS)


def _is_int(value: object) -> bool:
    # JSON true/false arrive as bool, which Python counts as int: they are not numbers here.
    return isinstance(value, int) and not isinstance(value, bool)


def _visible(value: str) -> bool:
    return any(unicodedata.category(c) not in INVISIBLE for c in value)


def _text(data: dict[str, Any], field: str, kind: str, length: tuple[int, int]) -> str:
    """A string field, stripped, of ``length`` characters, on one line, with something to see."""
    low, high = length
    value = data.get(field)
    if isinstance(value, str):
        value = value.strip()
        # Cc: control characters (line breaks, escapes); Cs: lone surrogates, which JSON allows
        # (as "\ud800") but which cannot be sent on as UTF-8.
        if (
            low <= len(value) <= high
            and not any(unicodedata.category(c) in ("Cc", "Cs") for c in value)
            and _visible(value)
        ):
            return value
    raise ProtocolError(
        "bad_message", f"{kind} needs {field}: text of {low} to {high} characters on one line, not all blank.", kind
    )


def _name(data: dict[str, Any], field: str, kind: str, length: tuple[int, int]) -> str:
    """A player's or a room's name: :func:`_text`, and no format characters (zero-width spaces,
    direction overrides...) but the zero-width joiner that glues emoji together."""
    value = _text(data, field, kind, length)
    if any(unicodedata.category(c) == "Cf" and c != ZWJ for c in value):
        raise ProtocolError(
            "bad_message", f"{kind}'s {field} has an invisible formatting character: type it again.", kind
        )
    return value

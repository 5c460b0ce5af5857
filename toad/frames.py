"""RFC 6455 section 5: frames, opcodes, masking and close codes.

Pure functions on bytes: no sockets, no clocks. :mod:`toad.protocol` builds
the connection's state machine on top of these.
"""

from __future__ import annotations

import enum
import functools
import os
import struct

__all__ = [
    "CloseCode",
    "Opcode",
    "apply_mask",
    "encode_frame",
    "is_valid_wire_code",
    "serialize_close",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 section 7.4.1, and IANA's registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never sent on the wire (section 7.4.1)
    ABNORMAL_CLOSURE = 1006  # never sent on the wire (section 7.4.1)
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never sent on the wire (section 7.4.1)


# Codes an endpoint may put in a Close frame: section 7.4.1 and 7.4.2, plus the
# IANA-registered 1012-1014. 3000-4999 are for libraries and applications.
_WIRE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_wire_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame on the wire."""
    return code in _WIRE_CODES or 3000 <= code <= 4999


_pack_B2 = struct.Struct("!BB").pack
_pack_B2H = struct.Struct("!BBH").pack
_pack_B2Q = struct.Struct("!BBQ").pack


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` (section 5.3); masking and unmasking are the same."""
    n = len(data)
    if n <= _MASK_CHUNK:
        return _mask_piece(data, mask, n)
    # Big integers of a cache's size are several times faster per byte than
    # one the size of the whole message: mask a large payload piece by piece.
    # Each piece is a multiple of 4 bytes long, so every piece starts at mask[0].
    view = memoryview(data)
    return b"".join(
        [_mask_piece(view[i : i + _MASK_CHUNK], mask, len(view[i : i + _MASK_CHUNK])) for i in range(0, n, _MASK_CHUNK)]
    )


def _mask_piece(data: bytes | bytearray | memoryview, mask: bytes, n: int) -> bytes:
    if n == 0:
        return b""
    # Big-integer arithmetic instead of a Python loop per byte: the work happens
    # in C. The repeated mask is the key times 1 + 2**32 + 2**64 + ..., a
    # number that depends only on the length, so it is made once per length.
    lanes, rest = divmod(n, 4)
    pattern = int.from_bytes(mask, "little") * (_ones(lanes) if lanes <= 1024 else _ones_large(lanes))
    if rest:
        pattern |= int.from_bytes(mask[:rest], "little") << (lanes << 5)
    return (int.from_bytes(data, "little") ^ pattern).to_bytes(n, "little")


_MASK_CHUNK = 65536


@functools.lru_cache(maxsize=256)
def _ones(lanes: int) -> int:
    """1 + 2**32 + 2**64 + ... with ``lanes`` terms: a one in the low byte of each 32-bit lane."""
    return int.from_bytes(b"\x01\x00\x00\x00" * lanes, "little")


# Pieces of more than 4 KiB: the full piece's length stays, and one other (the
# last piece of the latest message), so this holds at most 128 KiB.
_ones_large = functools.lru_cache(maxsize=2)(_ones.__wrapped__)


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bool = False,
    rsv: int = 0,
) -> bytes:
    """Serialize one frame (section 5.2).

    A client MUST mask every frame it sends and a server MUST NOT (section 5.1);
    pass ``mask=True`` on the client side. The masking key comes from
    :func:`os.urandom`, as section 10.3 asks for an unpredictable key.
    """
    head = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = _pack_B2(head, mask_bit | n)
    elif n < 0x10000:
        header = _pack_B2H(head, mask_bit | 126, n)
    else:
        header = _pack_B2Q(head, mask_bit | 127, n)
    if mask:
        key = os.urandom(4)
        return header + key + apply_mask(payload, key)
    return header + payload


def serialize_close(code: int | None, reason: str = "") -> bytes:
    """The payload of a Close frame (section 5.5.1): a 2-byte code, then a UTF-8 reason."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")

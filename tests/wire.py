"""Bytes for the core's tests: handshakes, hand-built frames and an independent frame reader.

Nothing here uses toad's own parser: frames are built and read back with
``struct`` so that a bug in :mod:`toad.protocol` cannot hide itself.
"""

from __future__ import annotations

import struct
from itertools import pairwise
from typing import NamedTuple

from toad.handshake import accept_key
from toad.protocol import CLIENT, SERVER, Opened, Protocol, Side

#: The sample key of RFC 6455 section 1.3 and its Sec-WebSocket-Accept.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#: A fixed masking key, so hand-built client frames are reproducible.
MASK = b"\x37\xfa\x21\x3d"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

REQUEST_HEADERS = (
    ("Host", "localhost:8001"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)


def request(
    headers: tuple[tuple[str, str], ...] = REQUEST_HEADERS,
    *,
    drop: tuple[str, ...] = (),
    extra: tuple[tuple[str, str], ...] = (),
    start_line: str = "GET /chat HTTP/1.1",
) -> bytes:
    """A client's opening handshake: ``headers`` minus ``drop`` (case-insensitive), plus ``extra``."""
    dropped = {name.lower() for name in drop}
    lines = [start_line]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in dropped]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(
    key: str,
    *,
    status_line: str = "HTTP/1.1 101 Switching Protocols",
    drop: tuple[str, ...] = (),
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    """A server's answer to ``key``: a correct 101 unless told otherwise."""
    headers = (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    )
    dropped = {name.lower() for name in drop}
    lines = [status_line]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in dropped]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request_key(data: bytes) -> str:
    """The Sec-WebSocket-Key of a request toad built."""
    for line in data.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "sec-websocket-key":
            return value.strip()
    raise AssertionError(f"no Sec-WebSocket-Key in {data!r}")


def open_server(**kwargs: object) -> Protocol:
    """A server-side Protocol past its handshake, with nothing left to send."""
    protocol = Protocol(SERVER, **kwargs)  # type: ignore[arg-type]
    events = protocol.receive_data(request())
    assert [type(e) for e in events] == [Opened]
    assert protocol.data_to_send().startswith(b"HTTP/1.1 101 ")
    return protocol


def open_client(**kwargs: object) -> Protocol:
    """A client-side Protocol past its handshake, with nothing left to send."""
    protocol = Protocol(CLIENT, **kwargs)  # type: ignore[arg-type]
    protocol.connect("localhost", 8001)
    key = request_key(protocol.data_to_send())
    events = protocol.receive_data(response(key))
    assert [type(e) for e in events] == [Opened]
    return protocol


def open_protocol(side: Side, **kwargs: object) -> Protocol:
    return open_server(**kwargs) if side is SERVER else open_client(**kwargs)


def header(opcode: int, length: int, *, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """A frame header up to and including the extended length, without the masking key."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if masked else 0
    if length < 126:
        return struct.pack("!BB", b0, m | length)
    if length < 0x10000:
        return struct.pack("!BBH", b0, m | 126, length)
    return struct.pack("!BBQ", b0, m | 127, length)


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """Byte-by-byte masking, as section 5.3 writes it."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    key: bytes = MASK,
) -> bytes:
    """One hand-built frame."""
    head = header(opcode, len(payload), fin=fin, rsv=rsv, masked=masked)
    if masked:
        return head + key + mask_bytes(payload, key)
    return head + payload


def peer_frame(protocol: Protocol, opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """A frame as ``protocol``'s peer would send it: masked towards a server, not towards a client."""
    return frame(opcode, payload, masked=not protocol.is_client, **kwargs)  # type: ignore[arg-type]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


class WireFrame(NamedTuple):
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


def read_frames(data: bytes) -> list[WireFrame]:
    """Decode a whole stream of frames; fails if bytes are left over."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        length = b1 & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            key = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + length]
        assert len(payload) == length, f"truncated frame in {data!r}"
        pos += length
        if masked:
            payload = mask_bytes(payload, key)
        frames.append(WireFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload))
    return frames


def read_close(data: bytes) -> tuple[int | None, bytes]:
    """The code and reason of the single Close frame that ``data`` must be."""
    frames = read_frames(data)
    assert [f.opcode for f in frames] == [CLOSE], frames
    payload = frames[0].payload
    if not payload:
        return None, b""
    (code,) = struct.unpack_from("!H", payload)
    return code, payload[2:]


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, sorted, deduplicated)."""
    if not data:
        return [data]
    points = sorted({c % len(data) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


def feed(protocol: Protocol, pieces: list[bytes]) -> list[object]:
    """Feed ``pieces`` one receive_data call each; all the events, in order."""
    events: list[object] = []
    for piece in pieces:
        events += protocol.receive_data(piece)
    return events

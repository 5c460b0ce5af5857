"""The sans-I/O WebSocket connection: bytes in, events out (RFC 6455).

:class:`Protocol` knows the whole protocol for one connection, client or
server side: the opening handshake, framing, fragmentation, UTF-8 checks, ping
and pong, and the closing handshake. It owns no socket, thread or clock: the
I/O layer feeds it what the network delivered (:meth:`Protocol.receive_data`,
:meth:`Protocol.receive_eof`), writes out :meth:`Protocol.data_to_send`, and
acts on the events it returns. Timeouts belong to the I/O layer too.

Not thread-safe: the I/O layer serialises calls on one connection.
"""

from __future__ import annotations

import codecs
import enum
import struct
from collections.abc import Sequence

from . import handshake
from .errors import InvalidCloseCode, InvalidHandshake, InvalidMessage, MessageTooBig, ProtocolError
from .frames import CloseCode, Opcode, apply_mask, encode_frame, is_valid_wire_code, serialize_close
from .messages import Binary, Text

__all__ = [
    "CLIENT",
    "SERVER",
    "Closed",
    "Event",
    "Opened",
    "Ping",
    "Pong",
    "Protocol",
    "Side",
    "State",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB
DEFAULT_MAX_HEADER_SIZE = 8192


class Side(enum.Enum):
    """Which end of the connection this is."""

    SERVER = "server"
    CLIENT = "client"


SERVER = Side.SERVER
CLIENT = Side.CLIENT


class State(enum.IntEnum):
    """The connection's state (RFC 6455 sections 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2  # we sent a Close frame and wait for the peer's
    CLOSED = 3


class Opened:
    """The opening handshake completed."""

    __slots__ = ("request", "response", "subprotocol")

    def __init__(
        self,
        request: handshake.Request | None,
        response: handshake.Response | None,
        subprotocol: str | None,
    ) -> None:
        self.request = request
        self.response = response
        self.subprotocol = subprotocol


class Ping:
    """A Ping frame arrived (the Pong answer is already queued)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Pong:
    """A Pong frame arrived."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Closed:
    """The connection is over as far as the protocol goes; close the transport.

    ``code`` and ``reason`` are the peer's Close frame when it sent one (1005
    when its frame had no code), the code toad sent when toad failed the
    connection, and 1006 when the stream ended without a Close frame.
    ``error`` is the :class:`ProtocolError` that failed the connection, if one did.
    """

    __slots__ = ("code", "error", "reason")

    def __init__(self, code: int, reason: str = "", error: ProtocolError | None = None) -> None:
        self.code = code
        self.reason = reason
        self.error = error

    def __repr__(self) -> str:
        return f"Closed(code={self.code}, reason={self.reason!r}, error={self.error!r})"


Event = Opened | Text | Binary | Ping | Pong | Closed

_unpack_H = struct.Struct("!H").unpack_from
_unpack_Q = struct.Struct("!Q").unpack_from
_utf8_decoder = codecs.getincrementaldecoder("utf-8")

_TEXT = Opcode.TEXT.value
_BINARY = Opcode.BINARY.value
_CONT = Opcode.CONTINUATION.value
_CLOSE = Opcode.CLOSE.value
_PING = Opcode.PING.value
_PONG = Opcode.PONG.value


def parse_close(payload: bytes) -> tuple[int, str]:
    """Read a Close frame's payload (section 5.5.1) into ``(code, reason)``.

    An empty payload means 1005 (no status). Raises :class:`ProtocolError` with
    1002 for a 1-byte payload or a code that must not be on the wire, and with
    1007 for a reason that is not UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        raise ProtocolError("a close frame's payload cannot be 1 byte long")
    (code,) = _unpack_H(payload)
    if not is_valid_wire_code(code):
        raise ProtocolError(f"close code {code} is not allowed on the wire")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("a close reason is not valid UTF-8", CloseCode.INVALID_FRAME_PAYLOAD_DATA) from None
    return code, reason


def encode_message(message: str | bytes, mask: bool = False) -> bytes:
    """The frame for one data message: ``str`` in a text frame, bytes-like in a binary one."""
    if isinstance(message, str):
        return encode_frame(_TEXT, message.encode("utf-8"), mask=mask)
    if isinstance(message, bytes):
        return encode_frame(_BINARY, message, mask=mask)  # (a Binary too: immutable, so no copy)
    if isinstance(message, (bytearray, memoryview)):
        return encode_frame(_BINARY, bytes(message), mask=mask)
    raise InvalidMessage(
        f"a message is str or bytes, not {type(message).__name__}: turn it into one first (for example with json.dumps)"
    )


def close_payload(code: int, reason: str = "") -> bytes:
    """A Close frame's payload for sending, or :class:`InvalidCloseCode` (section 7.4)."""
    if not isinstance(code, int) or not is_valid_wire_code(code):
        raise InvalidCloseCode(
            f"close code {code!r} cannot be sent: use 1000 (normal), 1001 (going away), "
            "1002-1003, 1007-1014, or 3000-4999 for your own game's codes"
        )
    payload = serialize_close(code, reason)
    if len(payload) > 125:
        raise InvalidCloseCode("a close reason must fit in 123 bytes of UTF-8: shorten it")
    return payload


class Protocol:
    """One WebSocket connection's protocol state machine.

    ``max_message_size`` bounds a whole message, fragments included; a larger
    one fails the connection with 1009 as soon as its frame header shows it
    (``None`` lifts the limit). ``max_header_size`` bounds the handshake head.
    On the server side ``subprotocols`` lists what the server speaks and
    ``origins`` (when not ``None``) the Origin values it accepts.
    """

    __slots__ = (
        "_buf",
        "_decoder",
        "_frag_opcode",
        "_frags",
        "_key",
        "_out",
        "bytes_expected",
        "close_code",
        "close_reason",
        "close_sent",
        "is_client",
        "max_header_size",
        "max_message_size",
        "origins",
        "request",
        "response",
        "side",
        "state",
        "subprotocol",
        "subprotocols",
    )

    def __init__(
        self,
        side: Side,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        subprotocols: Sequence[str] = (),
        origins: Sequence[str] | None = None,
    ) -> None:
        self.side = side
        self.is_client = side is Side.CLIENT
        self.state = State.CONNECTING
        self.max_message_size = max_message_size if max_message_size is not None else 1 << 63
        self.max_header_size = max_header_size
        self.subprotocols = tuple(subprotocols)
        self.origins = tuple(origins) if origins is not None else None
        self.subprotocol: str | None = None
        self.request: handshake.Request | None = None
        self.response: handshake.Response | None = None
        #: The Close frame's code and reason, once the connection is closed.
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_sent = False
        self._key = ""
        self._buf = bytearray()
        #: How many more bytes complete the frame being received, when its header is in (else 0).
        self.bytes_expected = 0
        self._out: list[bytes] = []
        # The message being reassembled from fragments (section 5.4).
        self._frag_opcode = 0
        # One buffer, not a list of pieces: a flood of empty fragments costs no memory.
        self._frags = bytearray()
        self._decoder: codecs.IncrementalDecoder | None = None

    # -- output ----------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the network since the last call."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def connect(
        self,
        host: str,
        port: int,
        path: str = "/",
        *,
        secure: bool = False,
        origin: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Client side: queue the opening handshake request (section 4.1)."""
        self._key = handshake.generate_key()
        self._out.append(
            handshake.build_request(
                host,
                port,
                path,
                self._key,
                secure=secure,
                subprotocols=self.subprotocols,
                origin=origin,
                extra_headers=extra_headers,
            )
        )

    def encode(self, message: str | bytes) -> bytes | None:
        """The frame for a data message, or ``None`` once the connection is not open.

        ``str`` goes in a text frame, anything bytes-like in a binary frame.
        Nothing is queued: the I/O layer writes the result itself, so a
        broadcast can encode a server's frame once and write it to many.
        """
        if self.state is not State.OPEN:
            return None
        return encode_message(message, mask=self.is_client)

    def send_ping(self, data: bytes = b"") -> None:
        """Queue a Ping frame (section 5.5.2)."""
        if self.state is State.OPEN:
            self._out.append(encode_frame(_PING, data, mask=self.is_client))

    def send_pong(self, data: bytes = b"") -> None:
        """Queue an unsolicited Pong frame (section 5.5.3)."""
        if self.state is State.OPEN:
            self._out.append(encode_frame(_PONG, data, mask=self.is_client))

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2): queue a Close frame.

        Does nothing once a Close frame was sent. A code that may not go on the
        wire, or a reason too long for the frame, is a mistake in the caller's
        code and raises :class:`~toad.errors.InvalidCloseCode` (a ``ValueError``).
        """
        payload = close_payload(code, reason)
        if self.state is State.CONNECTING:
            self.state = State.CLOSED
            self.close_code = CloseCode.ABNORMAL_CLOSURE
            return
        if self.close_sent or self.state is State.CLOSED:
            return
        self._out.append(encode_frame(_CLOSE, payload, mask=self.is_client))
        self.close_sent = True
        self.state = State.CLOSING

    # -- input -----------------------------------------------------------------

    def receive_eof(self) -> list[Event]:
        """The peer closed its side of the stream."""
        closed = self.abort("the connection ended without a closing handshake")
        return [closed] if closed is not None else []

    def abort(self, reason: str) -> Closed | None:
        """The transport is gone (or being dropped) without a closing handshake: code 1006.

        Returns the :class:`Closed` event, or ``None`` if the protocol was closed already.
        """
        if self.state is State.CLOSED:
            return None
        self.state = State.CLOSED
        self.close_code = CloseCode.ABNORMAL_CLOSURE
        self.close_reason = reason
        return Closed(CloseCode.ABNORMAL_CLOSURE, reason)

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the network; returns the events they complete, in order.

        After a :class:`Closed` event nothing more is parsed.
        """
        events: list[Event] = []
        if self.state is State.CLOSED:
            return events
        try:
            if self.state is State.CONNECTING:
                data = self._receive_handshake(data, events)
                # (the handshake may have changed the state: mypy cannot know)
                if self.state is not State.OPEN or not data:  # type: ignore[comparison-overlap]
                    return events
            self._receive_frames(data, events)
        except ProtocolError as exc:
            # Without its traceback: the traceback's frames hold ``events``,
            # which holds the error, a cycle only the garbage collector frees.
            self._fail(exc.with_traceback(None), events)
        return events

    def fail(self, exc: ProtocolError) -> Closed | None:
        """_Fail the WebSocket Connection_ (section 7.1.7) for a reason found above the protocol.

        Queues a Close frame with ``exc.close_code`` and returns the
        :class:`Closed` event carrying ``exc``, or ``None`` if already closed.
        Data already received but not yet returned is dropped.
        """
        if self.state is State.CLOSED:
            return None
        events: list[Event] = []
        self._fail(exc, events)
        closed = events[-1]
        assert isinstance(closed, Closed)
        return closed

    def _fail(self, exc: ProtocolError, events: list[Event]) -> None:
        # Section 7.1.7: _Fail the WebSocket Connection_: send a Close frame
        # with the code (unless one was sent), then close the transport.
        if self.state is State.CONNECTING:
            if not self.is_client and isinstance(exc, InvalidHandshake):
                status = exc.status
                extra: list[tuple[str, str]] = []
                if status == 426:
                    extra.append(("Sec-WebSocket-Version", "13"))
                    extra.append(("Upgrade", "websocket"))
                reason = _REASONS.get(status, "Bad Request")
                body = (str(exc) + "\n").encode("utf-8")
                self._out.append(
                    handshake.build_response(status, reason, [*extra, ("Content-Type", "text/plain")], body)
                )
        elif not self.close_sent:
            self._out.append(encode_frame(_CLOSE, serialize_close(exc.close_code, ""), mask=self.is_client))
            self.close_sent = True
        self.state = State.CLOSED
        self.close_code = exc.close_code
        self.close_reason = str(exc)
        self._buf = bytearray()
        self._frags = bytearray()
        events.append(Closed(exc.close_code, str(exc), exc))

    def _receive_handshake(self, data: bytes, events: list[Event]) -> bytes:
        buf = self._buf
        start = max(0, len(buf) - 3)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buf) > self.max_header_size:
                raise self._head_too_large()
            return b""
        if end + 4 > self.max_header_size:
            raise self._head_too_large()
        head = bytes(buf[: end + 4])
        rest = bytes(buf[end + 4 :])
        self._buf = bytearray()
        if self.is_client:
            self.response = response = handshake.parse_response(head)
            try:
                self.subprotocol = handshake.check_response(response, self._key, self.subprotocols)
            except InvalidHandshake:
                self.response = response._replace(body=rest)
                raise
            self.state = State.OPEN
            events.append(Opened(None, response, self.subprotocol))
        else:
            self.request = request = handshake.parse_request(head)
            accept, self.subprotocol = handshake.check_request(request, self.subprotocols, self.origins)
            headers = [
                ("Server", "toad"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept),
            ]
            if self.subprotocol is not None:
                headers.append(("Sec-WebSocket-Protocol", self.subprotocol))
            self._out.append(handshake.build_response(101, "Switching Protocols", headers))
            self.state = State.OPEN
            events.append(Opened(request, None, self.subprotocol))
        return rest

    def _head_too_large(self) -> InvalidHandshake:
        # A server answers 431 to its client; a client says it was the server's answer.
        if self.is_client:
            message = f"the server's response header is too large (over {self.max_header_size} bytes)"
            return InvalidHandshake(message, status=0)  # no status was read
        return InvalidHandshake("the handshake's header is too large", status=431)

    def _receive_frames(self, data: bytes, events: list[Event]) -> None:
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        pos = 0
        end = len(view)
        is_client = self.is_client
        self.bytes_expected = 0
        while end - pos >= 2:
            b0 = view[pos]
            b1 = view[pos + 1]
            length = b1 & 0x7F
            hlen = 2
            if length == 126:
                if end - pos < 4:
                    break
                (length,) = _unpack_H(view, pos + 2)
                hlen = 4
            elif length == 127:
                if end - pos < 10:
                    break
                (length,) = _unpack_Q(view, pos + 2)
                hlen = 10
                if length >> 63:
                    raise ProtocolError("a frame's 64-bit length has its most significant bit set")
            opcode = b0 & 0x0F
            masked = b1 & 0x80
            # Check what the header says before waiting for the payload, so a
            # bad frame fails at once and an oversized one is never buffered.
            if b0 & 0x70:
                # Section 5.2: no extension was negotiated, so RSV1-3 MUST be 0.
                raise ProtocolError("a frame has reserved bits set but no extension was negotiated")
            if is_client:
                if masked:
                    # Section 5.1: a client MUST close on a masked frame.
                    raise ProtocolError("the server sent a masked frame")
            elif not masked:
                # Section 5.1: a server MUST close on an unmasked frame.
                raise ProtocolError("the client sent an unmasked frame")
            fin = b0 & 0x80
            if opcode >= 8:
                if opcode > _PONG:
                    raise ProtocolError(f"unknown opcode {opcode:#x}")
                # Section 5.5: control frames MUST NOT be fragmented, and
                # MUST have a payload of 125 bytes or less.
                if not fin:
                    raise ProtocolError("a control frame is fragmented")
                if length > 125:
                    raise ProtocolError("a control frame's payload is longer than 125 bytes")
            elif opcode > _BINARY:
                raise ProtocolError(f"unknown opcode {opcode:#x}")
            elif opcode == _CONT:
                if not self._frag_opcode:
                    raise ProtocolError("a continuation frame arrived with no message to continue")
                if len(self._frags) + length > self.max_message_size:
                    raise MessageTooBig(f"a message is larger than the limit of {self.max_message_size} bytes")
            else:
                if self._frag_opcode:
                    raise ProtocolError("a new message started before the fragmented one finished")
                if length > self.max_message_size:
                    raise MessageTooBig(f"a message is larger than the limit of {self.max_message_size} bytes")
            if masked:
                hlen += 4
            stop = pos + hlen + length
            if stop > end:
                self.bytes_expected = stop - end
                break
            if masked:
                key = bytes(view[pos + hlen - 4 : pos + hlen])
                if length > 65536:
                    # No copy of a large payload before unmasking; the view is
                    # released at once, since buf may be resized below.
                    with memoryview(view) as whole:
                        payload = apply_mask(whole[pos + hlen : stop], key)
                else:
                    payload = apply_mask(view[pos + hlen : stop], key)
            else:
                payload = bytes(view[pos + hlen : stop])
            pos = stop
            if opcode == _TEXT:
                if fin:
                    try:
                        events.append(str.__new__(Text, payload, "utf-8"))
                    except UnicodeDecodeError:
                        raise ProtocolError(
                            "a text message is not valid UTF-8", CloseCode.INVALID_FRAME_PAYLOAD_DATA
                        ) from None
                else:
                    self._start_fragments(_TEXT, payload)
            elif opcode == _BINARY:
                if fin:
                    events.append(Binary(payload))
                else:
                    self._start_fragments(_BINARY, payload)
            elif opcode == _CONT:
                self._continue_fragments(payload, bool(fin), events)
            elif opcode == _PING:
                # Section 5.5.2: answer a Ping with a Pong carrying its payload.
                if not self.close_sent:
                    self._out.append(encode_frame(_PONG, payload, mask=is_client))
                events.append(Ping(payload))
            elif opcode == _PONG:
                events.append(Pong(payload))
            else:  # Close
                self._receive_close(payload, events)
                return
        if buf:
            del buf[:pos]
        elif pos < end:
            self._buf = bytearray(view[pos:])

    def _start_fragments(self, opcode: int, payload: bytes) -> None:
        self._frag_opcode = opcode
        self._frags = bytearray(payload)
        if opcode == _TEXT:
            # Validate as fragments arrive, so invalid UTF-8 fails fast (section 8.1).
            self._decoder = _utf8_decoder()
            self._validate(payload, False)

    def _validate(self, payload: bytes, final: bool) -> None:
        assert self._decoder is not None
        try:
            self._decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise ProtocolError("a text message is not valid UTF-8", CloseCode.INVALID_FRAME_PAYLOAD_DATA) from None
        # CPython's incremental decoder holds back ED A0-BF (the start of a UTF-16
        # surrogate, never valid UTF-8) until a third byte arrives; section 8.1
        # says invalid UTF-8 MUST fail the connection, so fail on this fragment.
        pending = self._decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise ProtocolError("a text message is not valid UTF-8", CloseCode.INVALID_FRAME_PAYLOAD_DATA)

    def _continue_fragments(self, payload: bytes, fin: bool, events: list[Event]) -> None:
        self._frags += payload
        if self._decoder is not None:
            self._validate(payload, fin)
        if not fin:
            return
        data = self._frags
        self._frag_opcode = 0
        self._frags = bytearray()
        if self._decoder is not None:
            self._decoder = None
            events.append(str.__new__(Text, data, "utf-8"))
        else:
            events.append(Binary(data))

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        code, reason = parse_close(payload)
        if not self.close_sent:
            # Section 5.5.1: answer a Close frame with a Close frame, echoing the code.
            echo = serialize_close(None if code == CloseCode.NO_STATUS_RCVD else code)
            self._out.append(encode_frame(_CLOSE, echo, mask=self.is_client))
            self.close_sent = True
        self.state = State.CLOSED
        self.close_code = code
        self.close_reason = reason
        self._buf = bytearray()
        events.append(Closed(code, reason))


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    505: "HTTP Version Not Supported",
}

"""The sans-I/O state machine: ping and pong, the closing handshake, and every way to fail a connection.

Each failure test checks the close code, the error, and the Close frame toad
puts on the wire (RFC 6455 section 7.1.7: _Fail the WebSocket Connection_).
"""

from __future__ import annotations

import struct
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    chunks,
    close_payload,
    frame,
    header,
    open_client,
    open_protocol,
    open_server,
    peer_frame,
    read_close,
    read_frames,
    request,
    request_key,
    response,
)

from toad.errors import MessageTooBig, ProtocolError
from toad.messages import Binary, Text
from toad.protocol import CLIENT, SERVER, Closed, Opened, Ping, Pong, Protocol, State

SIDES = pytest.mark.parametrize("side", [SERVER, CLIENT], ids=["server", "client"])


def _peer(side, opcode, payload=b"", **kwargs):
    """A frame as the peer of a ``side`` protocol sends it (masked towards a server)."""
    return frame(opcode, payload, masked=side is SERVER, **kwargs)


# -- ping and pong ------------------------------------------------------------


@SIDES
def test_ping_is_answered_with_a_pong_carrying_the_same_payload(side):
    protocol = open_protocol(side)
    protocol.receive_data(_peer(side, PING, b"are you there?"))
    (pong,) = read_frames(protocol.data_to_send())
    assert (pong.opcode, pong.fin, pong.payload) == (PONG, True, b"are you there?")


@SIDES
def test_pong_is_masked_by_a_client_and_not_by_a_server(side):
    protocol = open_protocol(side)
    protocol.receive_data(_peer(side, PING, b"x"))
    (pong,) = read_frames(protocol.data_to_send())
    assert pong.masked is (side is CLIENT)


def test_ping_is_reported_as_a_ping_event_with_its_payload():
    (event,) = open_server().receive_data(frame(PING, b"\x00\xff"))
    assert type(event) is Ping
    assert event.data == b"\x00\xff"


@pytest.mark.parametrize("size", [0, 1, 125])
def test_ping_of_any_allowed_size_is_answered(size):
    protocol = open_server()
    protocol.receive_data(frame(PING, b"p" * size))
    assert read_frames(protocol.data_to_send())[0].payload == b"p" * size


def test_each_of_several_pings_gets_its_own_pong_in_order():
    protocol = open_server()
    protocol.receive_data(frame(PING, b"1") + frame(PING, b"2") + frame(PING, b"3"))
    assert [f.payload for f in read_frames(protocol.data_to_send())] == [b"1", b"2", b"3"]


@SIDES
def test_pong_is_reported_and_not_answered(side):
    protocol = open_protocol(side)
    (event,) = protocol.receive_data(_peer(side, PONG, b"beat"))
    assert type(event) is Pong
    assert event.data == b"beat"
    assert protocol.data_to_send() == b""


@SIDES
def test_send_ping_queues_a_ping_frame(side):
    protocol = open_protocol(side)
    protocol.send_ping(b"hi")
    (ping,) = read_frames(protocol.data_to_send())
    assert (ping.opcode, ping.payload, ping.masked) == (PING, b"hi", side is CLIENT)


def test_send_pong_queues_an_unsolicited_pong():
    protocol = open_server()
    protocol.send_pong(b"beat")
    assert [(f.opcode, f.payload) for f in read_frames(protocol.data_to_send())] == [(PONG, b"beat")]


def test_send_ping_does_nothing_before_the_handshake():
    protocol = Protocol(SERVER)
    protocol.send_ping(b"x")
    assert protocol.data_to_send() == b""


# -- encode -------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    ("message", "opcode", "payload"),
    [("héllo", TEXT, "héllo".encode()), (b"\x00\x01", BINARY, b"\x00\x01"), (bytearray(b"ab"), BINARY, b"ab")],
    ids=["str", "bytes", "bytearray"],
)
def test_encode_builds_one_data_frame(side, message, opcode, payload):
    (parsed,) = read_frames(open_protocol(side).encode(message))
    assert (parsed.opcode, parsed.fin, parsed.rsv, parsed.payload) == (opcode, True, 0, payload)
    assert parsed.masked is (side is CLIENT)


def test_encode_accepts_a_memoryview():
    (parsed,) = read_frames(open_server().encode(memoryview(b"view")))
    assert (parsed.opcode, parsed.payload) == (BINARY, b"view")


def test_encode_queues_nothing():
    protocol = open_server()
    protocol.encode("x")
    assert protocol.data_to_send() == b""


def test_encode_returns_none_before_the_handshake():
    assert Protocol(SERVER).encode("x") is None


# -- the closing handshake: the peer starts it --------------------------------


@SIDES
def test_peer_close_is_answered_with_a_close_frame_echoing_its_code(side):
    protocol = open_protocol(side)
    protocol.receive_data(_peer(side, CLOSE, close_payload(1001, b"going away")))
    code, _ = read_close(protocol.data_to_send())
    assert code == 1001


@SIDES
def test_echoed_close_frame_is_masked_by_a_client_only(side):
    protocol = open_protocol(side)
    protocol.receive_data(_peer(side, CLOSE, close_payload(1000)))
    (close,) = read_frames(protocol.data_to_send())
    assert close.masked is (side is CLIENT)


@SIDES
def test_peer_close_is_reported_with_its_code_and_reason(side):
    protocol = open_protocol(side)
    (closed,) = protocol.receive_data(_peer(side, CLOSE, close_payload(1000, "fin ✓".encode())))
    assert type(closed) is Closed
    assert (closed.code, closed.reason, closed.error) == (1000, "fin ✓", None)


def test_peer_close_leaves_the_protocol_closed_with_the_peers_code():
    protocol = open_server()
    protocol.receive_data(frame(CLOSE, close_payload(4000, b"game over")))
    assert protocol.state is State.CLOSED
    assert (protocol.close_code, protocol.close_reason) == (4000, "game over")
    assert protocol.close_sent


def test_empty_close_payload_is_reported_as_1005():
    (closed,) = open_server().receive_data(frame(CLOSE, b""))
    assert closed.code == 1005
    assert closed.error is None


def test_empty_close_payload_is_echoed_with_an_empty_payload():
    # 1005 must never go on the wire (section 7.4.1).
    protocol = open_server()
    protocol.receive_data(frame(CLOSE, b""))
    assert read_close(protocol.data_to_send()) == (None, b"")


def test_close_reason_of_123_bytes_is_accepted():
    (closed,) = open_server().receive_data(frame(CLOSE, close_payload(1000, b"r" * 123)))
    assert closed.reason == "r" * 123


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_code_from_the_peer_is_accepted_and_echoed(code):
    protocol = open_server()
    (closed,) = protocol.receive_data(frame(CLOSE, close_payload(code)))
    assert (closed.code, closed.error) == (code, None)
    assert read_close(protocol.data_to_send())[0] == code


@SIDES
def test_data_after_a_close_frame_is_ignored(side):
    protocol = open_protocol(side)
    events = protocol.receive_data(_peer(side, CLOSE, close_payload(1000)) + _peer(side, TEXT, b"late"))
    assert [type(e) for e in events] == [Closed]
    protocol.data_to_send()
    assert protocol.receive_data(_peer(side, TEXT, b"later") + _peer(side, PING, b"p")) == []
    assert protocol.data_to_send() == b""


def test_send_close_after_the_peer_closed_sends_nothing():
    protocol = open_server()
    protocol.receive_data(frame(CLOSE, close_payload(1000)))
    protocol.data_to_send()
    protocol.send_close(1001)
    assert protocol.data_to_send() == b""


# -- the closing handshake: toad starts it ------------------------------------


@SIDES
def test_send_close_queues_a_close_frame_and_enters_closing(side):
    protocol = open_protocol(side)
    protocol.send_close(4001, "bye")
    (close,) = read_frames(protocol.data_to_send())
    assert (close.opcode, close.payload, close.masked) == (CLOSE, close_payload(4001, b"bye"), side is CLIENT)
    assert protocol.state is State.CLOSING
    assert protocol.close_sent


def test_send_close_defaults_to_1000():
    protocol = open_server()
    protocol.send_close()
    assert read_close(protocol.data_to_send()) == (1000, b"")


@SIDES
def test_peer_reply_to_our_close_completes_the_handshake(side):
    protocol = open_protocol(side)
    protocol.send_close(1000)
    protocol.data_to_send()
    (closed,) = protocol.receive_data(_peer(side, CLOSE, close_payload(1000, b"ok")))
    assert (closed.code, closed.reason, closed.error) == (1000, "ok", None)
    assert protocol.state is State.CLOSED
    assert protocol.data_to_send() == b""  # the reply is not answered again


def test_send_close_twice_sends_one_close_frame():
    protocol = open_server()
    protocol.send_close(1000)
    protocol.send_close(1001)
    assert read_close(protocol.data_to_send()) == (1000, b"")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 2999, 5000])
def test_send_close_refuses_a_code_that_cannot_go_on_the_wire(code):
    protocol = open_server()
    with pytest.raises(ValueError, match=str(code)):
        protocol.send_close(code)
    assert protocol.data_to_send() == b""
    assert protocol.state is State.OPEN


def test_send_close_refuses_a_reason_over_123_bytes():
    protocol = open_server()
    with pytest.raises(ValueError, match="123"):
        protocol.send_close(1000, "é" * 62)
    assert protocol.state is State.OPEN


def test_send_close_before_the_handshake_closes_without_a_frame():
    protocol = Protocol(SERVER)
    protocol.send_close(1000)
    assert protocol.state is State.CLOSED
    assert protocol.close_code == 1006
    assert protocol.data_to_send() == b""


def test_encode_returns_none_while_closing():
    protocol = open_client()
    protocol.send_close()
    assert protocol.encode("too late") is None


def test_messages_still_arrive_while_closing():
    # The peer may have sent them before it saw our Close frame (section 1.4).
    protocol = open_server()
    protocol.send_close()
    assert protocol.receive_data(frame(TEXT, b"in flight")) == ["in flight"]


def test_ping_while_closing_is_reported_but_not_answered():
    protocol = open_server()
    protocol.send_close()
    protocol.data_to_send()
    assert [type(e) for e in protocol.receive_data(frame(PING, b"p"))] == [Ping]
    assert protocol.data_to_send() == b""


def test_send_ping_does_nothing_while_closing():
    protocol = open_server()
    protocol.send_close()
    protocol.data_to_send()
    protocol.send_ping(b"x")
    assert protocol.data_to_send() == b""


def test_toad_client_and_server_close_each_other_cleanly():
    server, client = open_server(), open_client()
    client.send_close(1000, "done")
    (at_server,) = server.receive_data(client.data_to_send())
    (at_client,) = client.receive_data(server.data_to_send())
    assert (at_server.code, at_server.reason) == (1000, "done")
    assert (at_client.code, at_client.reason) == (1000, "")
    assert server.state is client.state is State.CLOSED
    assert server.data_to_send() == client.data_to_send() == b""


# -- the end of the stream ----------------------------------------------------


def test_eof_without_a_close_frame_is_1006():
    protocol = open_server()
    (closed,) = protocol.receive_eof()
    assert (closed.code, closed.error) == (1006, None)
    assert protocol.state is State.CLOSED
    assert protocol.data_to_send() == b""


def test_eof_after_the_closing_handshake_reports_nothing():
    protocol = open_server()
    protocol.receive_data(frame(CLOSE, close_payload(1000)))
    assert protocol.receive_eof() == []


def test_abort_reports_1006_once():
    protocol = open_server()
    closed = protocol.abort("timed out")
    assert (closed.code, closed.reason) == (1006, "timed out")
    assert protocol.abort("again") is None
    assert protocol.receive_data(frame(TEXT, b"x")) == []


# -- failing the connection (section 7.1.7) -----------------------------------


def _fails(protocol: Protocol, data: bytes, code: int) -> Closed:
    """Feed ``data``; check the connection failed with ``code`` and sent exactly one Close frame with it."""
    events = protocol.receive_data(data)
    assert events, "the connection did not fail"
    closed = events[-1]
    assert type(closed) is Closed, events
    assert isinstance(closed.error, ProtocolError)
    assert closed.code == closed.error.close_code == code
    assert protocol.state is State.CLOSED
    assert protocol.close_code == code
    (sent,) = read_frames(protocol.data_to_send())
    assert (sent.opcode, sent.payload, sent.masked) == (CLOSE, struct.pack("!H", code), protocol.is_client)
    # Nothing more is read once the connection failed.
    assert protocol.receive_data(peer_frame(protocol, TEXT, b"more")) == []
    assert protocol.data_to_send() == b""
    return closed


@SIDES
@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_reserved_bits_fail_with_1002(side, rsv):
    # Section 5.2: RSV1-3 MUST be 0 unless an extension was negotiated.
    _fails(open_protocol(side), _peer(side, TEXT, b"x", rsv=rsv), 1002)


@SIDES
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode_fails_with_1002(side, opcode):
    # Section 5.2: on an unknown opcode the receiving endpoint MUST fail the connection.
    _fails(open_protocol(side), _peer(side, opcode, b""), 1002)


def test_unmasked_client_frame_fails_the_server_with_1002():
    # Section 5.1: a server MUST close the connection upon an unmasked frame.
    _fails(open_server(), frame(TEXT, b"x", masked=False), 1002)


def test_masked_server_frame_fails_the_client_with_1002():
    # Section 5.1: a client MUST close the connection upon a masked frame.
    _fails(open_client(), frame(TEXT, b"x", masked=True), 1002)


@SIDES
@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_fragmented_control_frame_fails_with_1002(side, opcode):
    # Section 5.5: control frames MUST NOT be fragmented.
    _fails(open_protocol(side), _peer(side, opcode, b"", fin=False), 1002)


@SIDES
@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_control_frame_over_125_bytes_fails_with_1002(side, opcode):
    # Section 5.5: control frames MUST have a payload length of 125 bytes or less.
    _fails(open_protocol(side), _peer(side, opcode, close_payload(1000, b"r" * 124)), 1002)


def test_oversized_control_frame_fails_from_its_header_alone():
    _fails(open_server(), header(PING, 126), 1002)


@pytest.mark.parametrize("fin", [True, False], ids=["final", "non-final"])
def test_continuation_without_a_message_to_continue_fails_with_1002(fin):
    _fails(open_server(), frame(CONT, b"x", fin=fin), 1002)


def test_continuation_after_a_finished_fragmented_message_fails_with_1002():
    protocol = open_server()
    assert protocol.receive_data(frame(TEXT, b"a", fin=False) + frame(CONT, b"b")) == ["ab"]
    _fails(protocol, frame(CONT, b"c"), 1002)


@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize("second", [TEXT, BINARY])
def test_new_data_frame_inside_a_fragmented_message_fails_with_1002(first, second):
    # Section 5.4: fragments of one message MUST NOT be interleaved with another's.
    protocol = open_server()
    assert protocol.receive_data(frame(first, b"a", fin=False)) == []
    _fails(protocol, frame(second, b"b"), 1002)


@SIDES
@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_code_on_the_wire_fails_with_1002(side, code):
    # Section 7.4: 1005, 1006 and 1015 MUST NOT be set in a Close frame; the rest are unassigned.
    closed = _fails(open_protocol(side), _peer(side, CLOSE, close_payload(code)), 1002)
    assert str(code) in str(closed.error)


@SIDES
def test_one_byte_close_payload_fails_with_1002(side):
    # Section 5.5.1: a close body, if any, starts with a 2-byte code.
    _fails(open_protocol(side), _peer(side, CLOSE, b"\x03"), 1002)


@SIDES
@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xce", b"\xce\xba\xe1\xbd"],
    ids=["ff", "overlong-nul", "overlong-3", "surrogate", "above-10ffff", "truncated-2", "truncated-3"],
)
def test_invalid_utf8_text_frame_fails_with_1007(side, payload):
    # Section 8.1: a text message that is not valid UTF-8 MUST fail the connection.
    _fails(open_protocol(side), _peer(side, TEXT, payload), 1007)


@SIDES
def test_invalid_utf8_close_reason_fails_with_1007(side):
    _fails(open_protocol(side), _peer(side, CLOSE, close_payload(1000, b"bad \xff")), 1007)


def test_invalid_utf8_in_the_last_fragment_fails_with_1007():
    protocol = open_server()
    protocol.receive_data(frame(TEXT, b"fine", fin=False))
    _fails(protocol, frame(CONT, b"\xff"), 1007)


def test_text_message_ending_inside_a_character_fails_on_its_last_fragment():
    protocol = open_server()
    assert protocol.receive_data(frame(TEXT, b"a\xe2\x82", fin=False)) == []
    _fails(protocol, frame(CONT, b""), 1007)


@pytest.mark.parametrize(
    ("valid_prefix", "bad_fragment"),
    [
        (b"\xce\xba", b"\xff"),
        (b"\xce", b"A"),
        (b"\xf4", b"\x90"),
        (b"\xe0", b"\x9f"),
        (b"\xed", b"\xa0"),
        (b"ab\xed", b"\xbf\x80"),
        (b"\xf0\x9f", b"\x98\x80\xff"),
    ],
    ids=["ff", "lead-then-ascii", "above-10ffff", "overlong-3", "surrogate", "surrogate-high", "after-a-character"],
)
def test_invalid_utf8_fails_on_the_fragment_that_makes_it_invalid(valid_prefix, bad_fragment):
    # Fail fast: the non-final fragment that breaks UTF-8 fails the connection, before the message ends.
    protocol = open_server()
    assert protocol.receive_data(frame(TEXT, valid_prefix, fin=False)) == []
    _fails(protocol, frame(CONT, bad_fragment, fin=False), 1007)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_valid_utf8_prefix(data: bytes) -> bool:
    """Whether more bytes could still make ``data`` valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(data)
    return True


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=20),
    garbage=st.one_of(
        st.binary(min_size=1, max_size=4),
        st.sampled_from([b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xe0\x80\xaf", b"\xc0\xaf"]),
    ),
    tail=st.text(max_size=5),
    cuts=st.lists(st.integers(0, 40), max_size=5),
)
def test_fragmented_text_fails_exactly_at_the_first_fragment_that_cannot_be_utf8(text, garbage, tail, cuts):
    payload = text.encode() + garbage + tail.encode()
    points = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
    protocol = open_server()
    for i, (start, end) in enumerate(pairwise(points)):
        last = end == len(payload)
        events = protocol.receive_data(frame(TEXT if i == 0 else CONT, payload[start:end], fin=last))
        received = payload[:end]
        valid = _decodes(received) if last else _is_valid_utf8_prefix(received)
        if not valid:
            assert [type(e) for e in events] == [Closed]
            assert events[0].code == 1007
            return
        assert events == ([payload.decode()] if last else [])


@SIDES
@pytest.mark.parametrize(
    ("limit", "length"),
    [(100, 101), (125, 126), (1000, 1001), (65535, 65536), (70000, 70001)],
    ids=["7-bit", "7-to-16-bit", "16-bit", "16-to-64-bit", "64-bit"],
)
def test_message_over_the_limit_fails_with_1009_from_its_header_alone(side, limit, length):
    # Only the header arrives: toad must not wait for (or buffer) the payload.
    protocol = open_protocol(side, max_message_size=limit)
    closed = _fails(protocol, header(BINARY, length, masked=side is SERVER), 1009)
    assert isinstance(closed.error, MessageTooBig)


@SIDES
def test_message_of_exactly_the_limit_is_accepted(side):
    protocol = open_protocol(side, max_message_size=1000)
    assert protocol.receive_data(_peer(side, TEXT, b"x" * 1000)) == ["x" * 1000]


def test_fragmented_message_over_the_limit_fails_with_1009_on_the_crossing_fragments_header():
    protocol = open_server(max_message_size=10)
    assert protocol.receive_data(frame(TEXT, b"123456", fin=False) + frame(CONT, b"789", fin=False)) == []
    closed = _fails(protocol, header(CONT, 2), 1009)
    assert isinstance(closed.error, MessageTooBig)


def test_fragmented_message_of_exactly_the_limit_is_accepted():
    protocol = open_server(max_message_size=10)
    data = frame(BINARY, b"12345", fin=False) + frame(PING, b"p" * 100) + frame(CONT, b"67890")
    events = protocol.receive_data(data)
    assert [type(e) for e in events] == [Ping, Binary]
    assert events[1] == b"1234567890"


def test_the_limit_counts_each_message_separately():
    protocol = open_server(max_message_size=4)
    data = frame(TEXT, b"ab", fin=False) + frame(CONT, b"cd") + frame(TEXT, b"ef", fin=False) + frame(CONT, b"gh")
    assert protocol.receive_data(data) == ["abcd", "efgh"]


def test_no_limit_accepts_a_large_message():
    protocol = open_server(max_message_size=None)
    assert protocol.receive_data(frame(BINARY, bytes(300_000))) == [bytes(300_000)]


@pytest.mark.parametrize("limit", [1 << 20, None], ids=["default-limit", "no-limit"])
def test_64_bit_length_with_the_top_bit_set_fails_with_1002(limit):
    # Section 5.2: the most significant bit of a 64-bit length MUST be 0.
    data = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63)
    _fails(open_server(max_message_size=limit), data, 1002)


def test_events_before_a_bad_frame_are_kept():
    events = open_server().receive_data(frame(TEXT, b"good") + frame(TEXT, b"bad", rsv=1))
    assert events[0] == "good"
    assert type(events[1]) is Closed


def test_failure_after_sending_close_sends_no_second_close_frame():
    protocol = open_server()
    protocol.send_close(1000)
    protocol.data_to_send()
    (closed,) = protocol.receive_data(frame(TEXT, b"x", rsv=2))
    assert closed.code == 1002
    assert protocol.state is State.CLOSED
    assert protocol.data_to_send() == b""


def test_invalid_close_reply_to_our_close_fails_without_another_close_frame():
    protocol = open_server()
    protocol.send_close(1000)
    protocol.data_to_send()
    (closed,) = protocol.receive_data(frame(CLOSE, close_payload(1005)))
    assert closed.code == 1002
    assert protocol.data_to_send() == b""


# -- robustness: garbage never raises ----------------------------------------

_EVENT_TYPES = (Opened, Text, Binary, Ping, Pong, Closed)


def _check_events(protocol: Protocol, events: list) -> bool:
    """Check the invariants of one receive_data answer; True once the protocol is closed."""
    assert isinstance(events, list)
    assert all(isinstance(e, _EVENT_TYPES) for e in events), events
    closed = [e for e in events if type(e) is Closed]
    assert len(closed) <= 1
    if not closed:
        return False
    assert events[-1] is closed[0]
    event = closed[0]
    if event.error is not None:
        assert isinstance(event.error, ProtocolError)
        assert event.code == event.error.close_code
        assert event.code in {1002, 1007, 1009}
    else:  # a Close frame from the peer
        assert event.code == 1005 or 1000 <= event.code <= 4999
    assert protocol.state is State.CLOSED
    return True


def _run(protocol: Protocol, pieces: list[bytes]) -> None:
    closed = False
    for piece in pieces:
        events = protocol.receive_data(piece)
        if closed:
            assert events == []
        closed = _check_events(protocol, events) or closed


def _check_frames_sent(protocol: Protocol) -> None:
    frames = read_frames(protocol.data_to_send())
    assert all(f.masked is protocol.is_client for f in frames)
    assert all(f.opcode in (PONG, CLOSE) for f in frames)
    closes = [i for i, f in enumerate(frames) if f.opcode == CLOSE]
    assert closes in ([], [len(frames) - 1])


def _fresh_client() -> Protocol:
    protocol = Protocol(CLIENT)
    protocol.connect("localhost", 8001)
    protocol.data_to_send()
    return protocol


_cuts = st.lists(st.integers(0, 4096), max_size=10)


@SIDES
@settings(max_examples=150, deadline=None)
@given(garbage=st.binary(max_size=400), cuts=_cuts)
def test_garbage_after_the_handshake_never_raises(side, garbage, cuts):
    protocol = open_protocol(side)
    _run(protocol, chunks(garbage, cuts))
    _check_frames_sent(protocol)


@pytest.mark.parametrize("make", [lambda: Protocol(SERVER), _fresh_client], ids=["server", "client"])
@settings(max_examples=150, deadline=None)
@given(
    garbage=st.one_of(
        st.binary(max_size=400),
        st.builds(lambda a, b: a + b"\r\n\r\n" + b, st.binary(max_size=200), st.binary(max_size=50)),
    ),
    cuts=_cuts,
)
def test_garbage_instead_of_a_handshake_never_raises(make, garbage, cuts):
    protocol = make()
    _run(protocol, chunks(garbage, cuts))


_stream_frames = st.lists(
    st.one_of(
        st.builds(lambda p, fin: (TEXT, p.encode(), fin), st.text(max_size=30), st.booleans()),
        st.builds(lambda p, fin: (BINARY, p, fin), st.binary(max_size=300), st.booleans()),
        st.builds(lambda p, fin: (CONT, p, fin), st.binary(max_size=30), st.booleans()),
        st.builds(lambda op, p: (op, p, True), st.sampled_from([PING, PONG]), st.binary(max_size=125)),
        st.builds(
            lambda c, r: (CLOSE, close_payload(c, r.encode()), True), st.integers(1000, 4999), st.text(max_size=5)
        ),
    ),
    max_size=8,
)
_mutations = st.lists(
    st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10_000), st.integers(0, 255)),
    max_size=6,
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        pos = where % (len(buf) + 1)
        if kind == "insert":
            buf[pos:pos] = bytes([value])
        elif pos < len(buf):
            if kind == "set":
                buf[pos] = value
            else:
                del buf[pos : pos + 1 + value % 8]
    return bytes(buf)


@SIDES
@settings(max_examples=200, deadline=None)
@given(frames=_stream_frames, mutations=_mutations, cuts=_cuts, limit=st.sampled_from([None, 64, 1 << 20]))
def test_mutated_frame_streams_never_raise(side, frames, mutations, cuts, limit):
    stream = b"".join(_peer(side, op, payload, fin=fin) for op, payload, fin in frames)
    protocol = open_protocol(side, max_message_size=limit)
    _run(protocol, chunks(_mutate(stream, mutations), cuts))
    _check_frames_sent(protocol)


@SIDES
@settings(max_examples=100, deadline=None)
@given(frames=_stream_frames, mutations=_mutations, cuts=_cuts)
def test_mutated_handshake_and_frames_never_raise(side, frames, mutations, cuts):
    if side is SERVER:
        protocol = Protocol(SERVER)
        head = request()
    else:
        protocol = Protocol(CLIENT)
        protocol.connect("localhost", 8001)
        head = response(request_key(protocol.data_to_send()))
    stream = head + b"".join(_peer(side, op, payload, fin=fin) for op, payload, fin in frames)
    _run(protocol, chunks(_mutate(stream, mutations), cuts))


# -- what a flood of tiny frames costs ------------------------------------------


def test_a_flood_of_empty_fragments_costs_no_memory():
    import tracemalloc

    server = open_server()
    server.receive_data(frame(BINARY, b"x", fin=False))
    empty = frame(CONT, b"", fin=False) * 10_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):  # 200,000 empty continuation frames
            assert server.receive_data(empty) == []
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000  # a list entry per fragment would be several MB
    assert server.state is State.OPEN
    assert server.receive_data(frame(CONT, b"y")) == [Binary(b"xy")]


def test_encode_refuses_what_is_not_str_or_bytes():
    from toad.errors import InvalidMessage, UsageError

    with pytest.raises(InvalidMessage, match=r"json\.dumps") as info:
        open_server().encode(5)  # bytes(5) would be five NUL bytes
    assert isinstance(info.value, UsageError) and isinstance(info.value, TypeError)


def test_send_close_names_every_code_it_accepts():
    from toad.errors import InvalidCloseCode

    with pytest.raises(InvalidCloseCode, match="1007-1014, or 3000-4999"):
        open_server().send_close(1005)

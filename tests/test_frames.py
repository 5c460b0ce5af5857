"""Framing (RFC 6455 section 5): toad's serializer, masking, and parse(serialize(x)) == x."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import (
    BINARY,
    CONT,
    MASK,
    PING,
    PONG,
    TEXT,
    chunks,
    feed,
    frame,
    mask_bytes,
    open_client,
    open_protocol,
    open_server,
    read_frames,
)

from toad.frames import CloseCode, Opcode, apply_mask, encode_frame, is_valid_wire_code, serialize_close
from toad.messages import Binary, Text
from toad.protocol import CLIENT, SERVER, Ping, Pong

SIDES = [SERVER, CLIENT]
BOUNDARIES = [0, 1, 125, 126, 127, 65535, 65536]


# -- constants ----------------------------------------------------------------


def test_opcodes_have_the_values_of_section_5_2():
    assert [Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY] == [0x0, 0x1, 0x2]
    assert [Opcode.CLOSE, Opcode.PING, Opcode.PONG] == [0x8, 0x9, 0xA]


def test_close_codes_have_the_values_of_section_7_4_1():
    assert CloseCode.NORMAL_CLOSURE == 1000
    assert CloseCode.PROTOCOL_ERROR == 1002
    assert CloseCode.NO_STATUS_RCVD == 1005
    assert CloseCode.ABNORMAL_CLOSURE == 1006
    assert CloseCode.INVALID_FRAME_PAYLOAD_DATA == 1007
    assert CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.TLS_HANDSHAKE == 1015


# -- the length encodings -----------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected_header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_length_uses_the_smallest_encoding_at_each_boundary(length, expected_header):
    data = encode_frame(Opcode.BINARY, b"\xab" * length)
    assert data[: len(expected_header)] == expected_header
    assert len(data) == len(expected_header) + length


@pytest.mark.parametrize(("length", "header_size"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_masked_frame_sets_the_mask_bit_and_adds_a_4_byte_key(length, header_size):
    data = encode_frame(Opcode.BINARY, b"\x00" * length, mask=True)
    assert data[1] & 0x80
    assert len(data) == header_size + 4 + length


# -- the examples of section 5.7 ------------------------------------------------


def test_rfc_example_single_frame_unmasked_text():
    assert encode_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")


def test_rfc_example_single_frame_masked_text():
    key = bytes.fromhex("37fa213d")
    assert apply_mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")


def test_masked_frame_from_encode_frame_matches_the_rfc_layout():
    data = encode_frame(Opcode.TEXT, b"Hello", mask=True)
    assert data[:2] == b"\x81\x85"
    assert apply_mask(data[6:], data[2:6]) == b"Hello"


def test_rfc_example_fragmented_unmasked_text():
    assert encode_frame(Opcode.TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert encode_frame(Opcode.CONTINUATION, b"lo") == bytes.fromhex("80026c6f")


def test_rfc_example_unmasked_ping():
    assert encode_frame(Opcode.PING, b"Hello") == bytes.fromhex("890548656c6c6f")


def test_rfc_example_256_bytes_binary_header():
    assert encode_frame(Opcode.BINARY, bytes(256))[:4] == bytes.fromhex("827e0100")


def test_rfc_example_64_kib_binary_header():
    assert encode_frame(Opcode.BINARY, bytes(65536))[:10] == bytes.fromhex("827f0000000000010000")


def test_reserved_bits_are_written_into_the_first_byte():
    assert encode_frame(Opcode.TEXT, b"", rsv=0b101)[0] == 0x80 | 0x50 | 0x1


def test_non_final_frame_clears_the_fin_bit():
    assert encode_frame(Opcode.BINARY, b"x", fin=False)[0] == 0x02


# -- masking (section 5.3) ----------------------------------------------------


def test_masking_empty_data_gives_empty_bytes():
    assert apply_mask(b"", MASK) == b""


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
def test_masking_matches_the_bytewise_xor_of_section_5_3(data, key):
    assert apply_mask(data, key) == mask_bytes(data, key)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
def test_masking_twice_gives_the_data_back(data, key):
    assert apply_mask(apply_mask(data, key), key) == data


@pytest.mark.parametrize("size", [4095, 4096, 4097, 65535, 65536, 65537, 3 * 65536 + 5])
def test_masking_large_data_piece_by_piece_matches_the_bytewise_xor(size):
    # Around the 4 KiB cache limit and the 64 KiB pieces, each piece must start at mask[0].
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    key = b"\x9a\x01\xff\x3c"
    expected = mask_bytes(data, key)
    assert apply_mask(data, key) == expected
    assert apply_mask(memoryview(data), key) == expected


def test_masking_keeps_leading_and_trailing_zero_bytes():
    # The big-integer XOR must not lose zero bytes at either end.
    assert apply_mask(b"\x00\x00abc\x00\x00", b"\x00\x00\x00\x00") == b"\x00\x00abc\x00\x00"


def test_masking_accepts_bytearray_and_memoryview():
    data = b"hello world"
    expected = mask_bytes(data, MASK)
    assert apply_mask(bytearray(data), MASK) == expected
    assert apply_mask(memoryview(data), MASK) == expected


@pytest.mark.parametrize("length", BOUNDARIES)
def test_masked_frame_unmasks_to_the_payload(length):
    payload = bytes(i % 251 for i in range(length))
    (parsed,) = read_frames(encode_frame(Opcode.BINARY, payload, mask=True))
    assert parsed.masked
    assert parsed.payload == payload


def test_each_frame_gets_a_fresh_masking_key():
    # Section 10.3: the masking key must be unpredictable.
    keys = {encode_frame(Opcode.TEXT, b"same", mask=True)[2:6] for _ in range(8)}
    assert len(keys) > 1


# -- close payloads and codes -------------------------------------------------


def test_close_payload_without_a_code_is_empty():
    assert serialize_close(None) == b""


def test_close_payload_is_the_code_then_the_utf8_reason():
    assert serialize_close(1000, "bye é") == b"\x03\xe8" + "bye é".encode()


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_code_is_allowed_on_the_wire(code):
    assert is_valid_wire_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_code_is_not_allowed_on_the_wire(code):
    assert not is_valid_wire_code(code)


# -- parsing what was serialized ----------------------------------------------


@pytest.mark.parametrize("side", SIDES, ids=["server", "client"])
@pytest.mark.parametrize("length", BOUNDARIES)
def test_protocol_parses_each_length_encoding(side, length):
    protocol = open_protocol(side)
    payload = bytes(i % 253 for i in range(length))
    events = protocol.receive_data(encode_frame(Opcode.BINARY, payload, mask=side is SERVER))
    assert events == [payload]
    assert type(events[0]) is Binary


@pytest.mark.parametrize("cut", range(1, 14))
def test_frame_split_inside_its_header_is_parsed_once_complete(cut):
    protocol = open_server()
    data = frame(BINARY, b"\x01" * 65536)
    assert protocol.receive_data(data[:cut]) == []
    assert protocol.receive_data(data[cut:]) == [b"\x01" * 65536]


def test_empty_text_frame_is_an_empty_text_message():
    events = open_server().receive_data(frame(TEXT, b""))
    assert events == [""]
    assert type(events[0]) is Text


def test_text_frame_arrives_as_text_and_binary_frame_as_binary():
    events = open_server().receive_data(frame(TEXT, b"hi") + frame(BINARY, b"hi"))
    assert [type(e) for e in events] == [Text, Binary]
    assert events == ["hi", b"hi"]


def test_fragmented_text_message_is_reassembled():
    protocol = open_server()
    data = frame(TEXT, b"Hel", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b"lo")
    assert protocol.receive_data(data) == ["Hello"]


def test_fragment_boundary_inside_a_utf8_character_is_reassembled():
    encoded = "né😀".encode()
    data = b"".join(frame(TEXT if i == 0 else CONT, encoded[i : i + 1], fin=i == len(encoded) - 1) for i in range(7))
    assert open_server().receive_data(data) == ["né😀"]


def test_ping_between_fragments_is_answered_and_the_message_still_completes():
    protocol = open_server()
    data = frame(TEXT, b"Hel", fin=False) + frame(PING, b"?") + frame(PONG, b"!") + frame(CONT, b"lo")
    events = protocol.receive_data(data)
    assert [type(e) for e in events] == [Ping, Pong, Text]
    assert (events[0].data, events[1].data, events[2]) == (b"?", b"!", "Hello")
    assert [(f.opcode, f.payload) for f in read_frames(protocol.data_to_send())] == [(PONG, b"?")]


# -- the round-trip property --------------------------------------------------

_messages = st.lists(
    st.one_of(
        st.tuples(st.just(TEXT), st.text(max_size=40)),
        st.tuples(st.just(BINARY), st.binary(max_size=40)),
        st.tuples(st.sampled_from([PING, PONG]), st.binary(max_size=125)),
    ),
    max_size=8,
)


@st.composite
def _fragmented_stream(draw, sender_masks):
    """A frame stream built with toad's encode_frame, and the events it must produce.

    Data messages are cut into random fragments (text at arbitrary byte
    offsets, inside characters too) and control frames are slipped between them.
    """
    stream = []
    expected = []
    for opcode, value in draw(_messages):
        if opcode in (PING, PONG):
            stream.append(encode_frame(opcode, value, mask=sender_masks))
            expected.append(("ping" if opcode == PING else "pong", value))
            continue
        payload = value.encode() if opcode == TEXT else value
        cuts = sorted(set(draw(st.lists(st.integers(0, len(payload)), max_size=4))))
        points = [0, *cuts, len(payload)]
        pieces = [payload[a:b] for a, b in pairwise(points)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            stream.append(encode_frame(opcode if i == 0 else CONT, piece, fin=last, mask=sender_masks))
            if not last and draw(st.booleans()):
                ping = draw(st.binary(max_size=10))
                stream.append(encode_frame(PING, ping, mask=sender_masks))
                expected.append(("ping", ping))
        expected.append(("text" if opcode == TEXT else "binary", value))
    return b"".join(stream), expected


def _describe(events):
    described = []
    for event in events:
        if type(event) is Text:
            described.append(("text", str(event)))
        elif type(event) is Binary:
            described.append(("binary", bytes(event)))
        elif type(event) is Ping:
            described.append(("ping", event.data))
        elif type(event) is Pong:
            described.append(("pong", event.data))
        else:
            described.append(("other", event))
    return described


@pytest.mark.parametrize("side", SIDES, ids=["server", "client"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parse_of_serialize_gives_back_the_messages_in_any_chunking(side, data):
    stream, expected = data.draw(_fragmented_stream(sender_masks=side is SERVER))
    cuts = data.draw(st.lists(st.integers(0, max(len(stream), 1)), max_size=12))
    protocol = open_protocol(side)
    events = feed(protocol, chunks(stream, cuts))
    assert _describe(events) == expected
    # Every Ping got its Pong, with the same payload, masked only by a client.
    pongs = read_frames(protocol.data_to_send())
    assert [(f.opcode, f.payload) for f in pongs] == [(PONG, v) for kind, v in expected if kind == "ping"]
    assert all(f.masked is (side is CLIENT) for f in pongs)


@settings(max_examples=100, deadline=None)
@given(messages=st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), max_size=6))
def test_messages_encoded_by_one_side_are_parsed_by_the_other(messages):
    server, client = open_server(), open_client()
    from_client = feed(server, [client.encode(m) for m in messages])
    from_server = feed(client, [server.encode(m) for m in messages])
    for received in (from_client, from_server):
        assert received == messages
        assert [type(e) for e in received] == [Text if isinstance(m, str) else Binary for m in messages]

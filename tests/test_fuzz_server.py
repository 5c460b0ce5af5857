"""Fuzzing a live toad.Server: random and mutated frames and handshakes over real sockets (issue 5).

One server serves the whole module, with a game thread that echoes every
message. Each Hypothesis example opens its own connection, sends what was
drawn (cut into a few TCP segments), and checks what comes back against a
small model of what RFC 6455 asks of a server, written here from the RFC and
not from toad's parser: a Pong for each Ping, an echo for each message, and
the close code where the RFC names one (1002 for a protocol error, 1007 for
invalid UTF-8, 1009 for a message over the limit). After every example:

- a well-behaved client, connected for the whole module, still gets its echo;
- the network loop has not crashed and the game thread's poll() never raised;
- toad logged nothing at WARNING or above;
- the server holds no socket but the good client's (every connection the
  example opened, refused or failed is gone).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from itertools import count
from typing import NamedTuple

import pytest
import wire
from game import EchoGame, round_trip
from helpers import RawClient, wait_until
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

LIMIT = 1000  # max_message_size: small, so that the examples reach it
HEADER_LIMIT = 2048  # max_header_size
BASELINE = 1  # the good client
_ids = count()

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Served(NamedTuple):
    game: EchoGame
    good: RawClient


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # No keepalive: a Ping of toad's own would be one more frame to tell apart.
    with EchoGame(max_message_size=LIMIT, max_header_size=HEADER_LIMIT, ping_interval=None, close_timeout=2.0) as game:
        good = RawClient(game.port)
        round_trip(good, "hello")
        yield Served(game, good)
        good.close()


def check_still_serving(served: Served) -> None:
    """What must hold after every example, whatever it sent."""
    game = served.game
    wait_until(lambda: game.connections() == BASELINE, timeout=5, what="the example's connection to be released")
    round_trip(served.good, f"still there {next(_ids)}")
    assert game.healthy(), game.failure
    assert game.warnings == []


# -- the model: what RFC 6455 asks a server to answer ----------------------------------------

_WIRE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def valid_close_code(code: int) -> bool:
    """Section 7.4: the codes an endpoint may send, plus IANA's 1012-1014 and 3000-4999."""
    return code in _WIRE_CODES or 3000 <= code <= 4999


def utf8_step(state: tuple[int, int, int] | None, data: bytes) -> tuple[int, int, int] | None:
    """Feed ``data`` to a UTF-8 validator (Unicode table 3-7); ``None`` once it cannot be UTF-8.

    The state is (continuation bytes still needed, lowest and highest allowed next byte).
    Section 8.1 asks a server to fail as soon as the bytes cannot be the start of UTF-8.
    """
    if state is None:
        return None
    need, lo, hi = state
    for b in data:
        if need:
            if not lo <= b <= hi:
                return None
            need, lo, hi = need - 1, 0x80, 0xBF
        elif b < 0x80:
            continue
        elif 0xC2 <= b <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif b == 0xED:  # no UTF-16 surrogates
            need, lo, hi = 2, 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif b == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:  # nothing past U+10FFFF
            need, lo, hi = 3, 0x80, 0x8F
        else:
            return None
    return need, lo, hi


UTF8_START = (0, 0, 0)


def is_utf8(data: bytes) -> bool:
    state = utf8_step(UTF8_START, data)
    return state is not None and state[0] == 0


class Expected(NamedTuple):
    pongs: list[bytes]
    echoes: list[tuple[int, bytes]]
    close: int | None  # the code of the Close the server must send (its failure's, or the echo of ours)
    at_boundary: bool  # the bytes ended between two frames


def expected_reply(data: bytes, limit: int = LIMIT) -> Expected:
    """What a server must answer to ``data``, sent by a client after the opening handshake.

    A verdict on a frame is given once its header is in, extended length
    included (before its masking key and payload): a server must not wait for
    a payload it will refuse. Several faults in one header all give 1002
    except a size over the limit, which gives 1009 only for a header with no
    other fault.
    """
    pongs: list[bytes] = []
    echoes: list[tuple[int, bytes]] = []
    frag_opcode = 0
    frag = b""
    utf8: tuple[int, int, int] | None = UTF8_START
    pos, end = 0, len(data)

    def fail(code: int) -> Expected:
        return Expected(pongs, echoes, code, False)

    while True:
        if end - pos < 2:
            return Expected(pongs, echoes, None, pos == end)
        b0, b1 = data[pos], data[pos + 1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            if end - pos < 4:
                return Expected(pongs, echoes, None, False)
            (length,) = struct.unpack_from("!H", data, pos + 2)
            head = 4
        elif length == 127:
            if end - pos < 10:
                return Expected(pongs, echoes, None, False)
            (length,) = struct.unpack_from("!Q", data, pos + 2)
            head = 10
        fin, rsv, opcode, masked = b0 & 0x80, b0 & 0x70, b0 & 0x0F, b1 & 0x80
        if length >> 63 or rsv or not masked:  # 5.2: the top bit is 0, no extension; 5.1: clients mask
            return fail(1002)
        if opcode >= 8:  # 5.5: control frames are short and never fragmented
            if opcode > 0xA or not fin or length > 125:
                return fail(1002)
        elif opcode > 2:  # 5.2: reserved data opcodes
            return fail(1002)
        elif opcode == 0:
            if not frag_opcode:
                return fail(1002)  # 5.4: nothing to continue
            if len(frag) + length > limit:
                return fail(1009)
        else:
            if frag_opcode:
                return fail(1002)  # 5.4: a new message inside a fragmented one
            if length > limit:
                return fail(1009)
        stop = pos + head + 4 + length
        if stop > end:
            return Expected(pongs, echoes, None, False)
        key = data[pos + head : pos + head + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[pos + head + 4 : stop]))
        pos = stop
        if opcode in (1, 2):
            if fin:
                if opcode == 1 and not is_utf8(payload):
                    return fail(1007)
                echoes.append((opcode, payload))
            else:
                frag_opcode, frag = opcode, payload
                utf8 = utf8_step(UTF8_START, payload) if opcode == 1 else UTF8_START
                if utf8 is None:
                    return fail(1007)
        elif opcode == 0:
            frag += payload
            if frag_opcode == 1:
                utf8 = utf8_step(utf8, payload)
                if utf8 is None or (fin and utf8[0]):
                    return fail(1007)
            if fin:
                echoes.append((frag_opcode, frag))
                frag_opcode, frag = 0, b""
        elif opcode == 9:
            pongs.append(payload)
        elif opcode == 8:
            if not payload:
                return fail(1005)  # echoed with no code; read as 1005 (section 7.1.5)
            if len(payload) == 1:
                return fail(1002)
            (code,) = struct.unpack_from("!H", payload)
            if not valid_close_code(code):
                return fail(1002)
            if not is_utf8(payload[2:]):
                return fail(1007)
            return fail(code)  # a valid Close: echoed with its code
        # (a Pong needs no answer)


def test_the_model_knows_the_rfc_examples() -> None:
    # The model is code too: a few frames whose answer the RFC spells out.
    hello = wire.frame(wire.TEXT, b"Hello")
    assert expected_reply(hello) == Expected([], [(1, b"Hello")], None, True)
    assert expected_reply(wire.frame(wire.PING, b"x") + hello[:3]) == Expected([b"x"], [], None, False)
    assert expected_reply(wire.frame(wire.TEXT, b"Hel", fin=False) + wire.frame(wire.CONT, b"lo")).echoes == [
        (1, b"Hello")
    ]
    assert expected_reply(wire.frame(wire.TEXT, b"\xed\xa0", fin=False)).close == 1007  # a surrogate, early
    assert expected_reply(wire.frame(wire.TEXT, b"\xf0\x9f", fin=False)).close is None  # the start of an emoji
    assert expected_reply(wire.frame(wire.TEXT, b"a", rsv=4)).close == 1002
    assert expected_reply(wire.frame(wire.TEXT, b"a", masked=False)).close == 1002
    assert expected_reply(wire.header(wire.BINARY, LIMIT + 1)).close == 1009
    assert expected_reply(wire.header(wire.BINARY, LIMIT + 1, rsv=1)).close == 1002
    assert expected_reply(wire.frame(wire.CLOSE, wire.close_payload(1005))).close == 1002
    assert expected_reply(wire.frame(wire.CLOSE, wire.close_payload(4000, b"\xff"))).close == 1007
    assert expected_reply(wire.frame(wire.CLOSE, wire.close_payload(4000, b"bye"))).close == 4000


# -- strategies: frames, mostly well-formed, with one thing or another wrong -------------------

_DATA_PAYLOADS = st.one_of(
    st.text(max_size=30).map(str.encode),
    st.binary(max_size=30),
    st.integers(LIMIT - 3, LIMIT + 3).map(lambda n: b"a" * n),
)
_CLOSE_PAYLOADS = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=1),
    st.builds(
        lambda code, reason: struct.pack("!H", code) + reason,
        st.one_of(
            st.sampled_from([1000, 1001, 1002, 1005, 1006, 1011, 1015, 2999, 3000, 4999, 5000]), st.integers(0, 65535)
        ),
        st.one_of(st.text(max_size=20).map(str.encode), st.binary(max_size=20)),
    ),
)
# Weights by repetition: most frames are valid, so that a stream reaches its later frames.
_OPCODES = st.sampled_from([0x0, 0x1, 0x1, 0x1, 0x2, 0x2, 0x2, 0x8, 0x9, 0x9, 0xA, -1])


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One client frame: usually valid, sometimes with reserved bits, no mask, a lying or huge length."""
    opcode = draw(_OPCODES)
    if opcode < 0:
        opcode = draw(st.integers(0, 15))  # any opcode, reserved ones included
    if opcode in (0, 1, 2):
        payload = draw(_DATA_PAYLOADS)
        fin = draw(st.sampled_from([True, True, True, False]))
    else:
        payload = draw(_CLOSE_PAYLOADS if opcode == 8 else st.binary(max_size=130))
        fin = draw(st.sampled_from([True] * 9 + [False]))
    rsv = draw(st.sampled_from([0] * 20 + [1, 4, 7]))
    masked = draw(st.sampled_from([True] * 15 + [False]))
    form = draw(st.sampled_from(["minimal"] * 10 + ["16-bit", "64-bit", "lie", "huge"]))
    declared = len(payload)
    if form == "lie":
        declared = draw(st.integers(0, len(payload) + 10))
    elif form == "huge":
        declared = draw(st.sampled_from([LIMIT + 1, 1 << 20, 1 << 40, (1 << 63) + 5, (1 << 64) - 1]))
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if masked else 0
    if form == "minimal" and declared < 126:
        head = struct.pack("!BB", b0, m | declared)
    elif form in ("minimal", "16-bit") and declared < 0x10000:
        head = struct.pack("!BBH", b0, m | 126, declared)
    else:
        head = struct.pack("!BBQ", b0, m | 127, declared)
    if not masked:
        return head + payload
    key = draw(st.binary(min_size=4, max_size=4))
    return head + key + wire.mask_bytes(payload, key)


@st.composite
def client_bytes(draw: st.DrawFn) -> bytes:
    """What a client sends after its handshake: random bytes, or a few frames, possibly cut short."""
    kind = draw(st.sampled_from(["random", "frames", "frames", "frames", "frames", "cut"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=300))
    data = b"".join(draw(st.lists(frames(), min_size=1, max_size=4))) + draw(st.binary(max_size=8))
    if kind == "cut":
        data = data[: draw(st.integers(1, len(data)))]
    return data


# -- frames after a valid handshake -----------------------------------------------------------


def read_reply(raw: RawClient, expected: Expected) -> tuple[list[bytes], list[tuple[int, bytes]], int | None]:
    """Read the server's frames: up to its Close when one is expected, else until every answer is in."""
    pongs: list[bytes] = []
    echoes: list[tuple[int, bytes]] = []
    while expected.close is not None or len(pongs) < len(expected.pongs) or len(echoes) < len(expected.echoes):
        opcode, payload = raw.recv_frame()
        if opcode == wire.PONG:
            pongs.append(payload)
        elif opcode == wire.CLOSE:
            return pongs, echoes, struct.unpack("!H", payload[:2])[0] if payload else 1005
        else:
            echoes.append((opcode, payload))
    return pongs, echoes, None


@FUZZ
@given(data=client_bytes(), same_packet=st.booleans(), cuts=st.lists(st.integers(0, 10_000), max_size=3))
def test_frames_get_the_answer_rfc_6455_asks_for_and_the_server_keeps_serving(
    served: Served, data: bytes, same_packet: bool, cuts: list[int]
) -> None:
    expected = expected_reply(data)
    event(f"closes {expected.close}" if expected.close else "stays open" if expected.at_boundary else "mid-frame")
    pieces = wire.chunks(data, cuts)
    raw = RawClient(served.game.port, handshake=False)
    raw.sock.settimeout(5)
    request = wire.request(start_line="GET /fuzz HTTP/1.1")
    try:
        if same_packet:  # the handshake and the first frames in one segment
            raw.sock.sendall(request + pieces.pop(0))
        else:
            raw.sock.sendall(request)
        assert raw.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
        for piece in pieces:
            raw.sock.sendall(piece)  # the server may have failed the connection: it still reads
        pongs, echoes, code = read_reply(raw, expected)
        assert pongs == expected.pongs
        if expected.close is not None:
            assert code == expected.close
            # Echoes are sent by the game at its next poll: those of the messages
            # just before a failure may never go out, but none is out of order.
            assert echoes == expected.echoes[: len(echoes)]
            assert raw.at_eof(timeout=5), "the server sent its Close but kept the connection open"
        else:
            assert code is None
            assert echoes == expected.echoes
            if expected.at_boundary:
                raw.send_frame(wire.CLOSE, struct.pack("!H", 1000))
                assert raw.recv_close()[0] == 1000
                assert raw.at_eof(timeout=5)
            else:
                raw.sock.settimeout(0.05)  # in the middle of a frame: nothing more may come
                with pytest.raises(TimeoutError):
                    raw.sock.recv(1)
    finally:
        raw.close()
    check_still_serving(served)


# -- handshakes: valid, mutated, truncated, oversized, random ---------------------------------

KEY = wire.KEY
_TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30)
ANY_ERROR = -1  # some 4xx or 5xx: the request is not HTTP toad can read
ERRORS = {400, 403, 405, 426, 431, 505}


def _is_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value.strip(" \t").encode("ascii"), validate=True)) == 16
    except ValueError:
        return False


@st.composite
def handshakes(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """A request and the status the server must answer (``None``: nothing, the request is not finished)."""
    path = "/" + draw(st.text(alphabet="abcxyz019/?=&%-_.~", max_size=20))
    start = f"GET {path} HTTP/1.1"
    headers = [
        ("Host", "127.0.0.1"),
        ("Upgrade", draw(st.sampled_from(["websocket", "WebSocket", "websocket, h2c"]))),
        ("Connection", draw(st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade"]))),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    # Harmless: more headers, names in any case, header order.
    headers += draw(st.lists(st.tuples(_TOKEN.map(lambda t: "X-" + t), _VALUE), max_size=3))
    headers = [(name.upper() if draw(st.booleans()) else name, value) for name, value in headers]
    headers = draw(st.permutations(headers))

    def without(name: str) -> list[tuple[str, str]]:
        return [(n, v) for n, v in headers if n.lower() != name.lower()]

    def replaced(name: str, value: str) -> list[tuple[str, str]]:
        return [*without(name), (name, value)]

    mutation = draw(
        st.sampled_from(
            [
                "none",
                "method",
                "http-version",
                "request-line",
                "host",
                "upgrade",
                "connection",
                "ws-version",
                "key",
                "malformed-line",
                "folded-line",
                "oversized",
                "truncated",
                "random",
            ]
        )
    )
    status: int | None = 101
    if mutation == "method":
        start = f"{draw(_TOKEN.filter(lambda t: t != 'GET'))} {path} HTTP/1.1"
        status = 405
    elif mutation == "http-version":
        version = draw(st.one_of(st.sampled_from(["HTTP/1.0", "HTTP/2", "http/1.1", "HTTP/1.10"]), _TOKEN))
        start = f"GET {path} {version}"
        status = 101 if version == "HTTP/1.1" else 505
    elif mutation == "request-line":
        start = draw(st.sampled_from(["GET /a b HTTP/1.1", "GET  /a HTTP/1.1", "GET", "GET /a", ""]))
        status = 400
    elif mutation == "host":
        headers = without("Host")
        status = 400
    elif mutation == "upgrade":
        headers = draw(st.sampled_from([without("Upgrade"), replaced("Upgrade", "h2c"), replaced("Upgrade", "")]))
        status = 426
    elif mutation == "connection":
        headers = draw(st.sampled_from([without("Connection"), replaced("Connection", "keep-alive")]))
        status = 426
    elif mutation == "ws-version":
        version = draw(st.sampled_from(["8", "12", "14", "13, 8", ""]))
        headers = draw(
            st.sampled_from([replaced("Sec-WebSocket-Version", version), [*headers, ("Sec-WebSocket-Version", "13")]])
        )
        status = 426
    elif mutation == "key":
        value = draw(st.one_of(st.sampled_from(["", "abc", KEY[:-2], KEY + "AA"]), _VALUE))
        headers = draw(
            st.sampled_from(
                [
                    without("Sec-WebSocket-Key"),
                    replaced("Sec-WebSocket-Key", value),
                    [*headers, ("Sec-WebSocket-Key", KEY)],
                ]
            )
        )
        keys = [v for n, v in headers if n.lower() == "sec-websocket-key"]
        status = 101 if len(keys) == 1 and _is_key(keys[0]) else 400
    elif mutation == "malformed-line":
        line = draw(st.sampled_from(["no colon here", "Bad Name: x", ": no name", "X-\x01: control"]))
        headers = [*headers, (line, None)]  # type: ignore[list-item]
        status = 400
    elif mutation == "folded-line":
        headers = [*headers, (draw(st.sampled_from([" folded", "\tfolded"])), None)]  # type: ignore[list-item]
        status = 400
    elif mutation == "oversized":
        headers = [*headers, ("X-Padding", "a" * HEADER_LIMIT)]
        status = 431
    lines = [start] + [name if value is None else f"{name}: {value}" for name, value in headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if mutation == "truncated":
        request = request[: draw(st.integers(1, len(request) - 1))]
        status = None
    elif mutation == "random":
        junk = draw(st.binary(min_size=1, max_size=300))
        return junk + b"\r\n\r\n", ANY_ERROR
    return request, status


@FUZZ
@given(case=handshakes())
def test_handshakes_get_the_status_rfc_6455_asks_for_and_the_server_keeps_serving(
    served: Served, case: tuple[bytes, int | None]
) -> None:
    request, status = case
    event(f"status {status}")
    raw = RawClient(served.game.port, handshake=False)
    raw.sock.settimeout(5)
    try:
        raw.sock.sendall(request)
        if status is None:
            raw.sock.settimeout(0.05)  # not finished: no answer yet
            with pytest.raises(TimeoutError):
                raw.sock.recv(1)
        else:
            head = raw.read_until(b"\r\n\r\n")
            got = int(head.split(b" ", 2)[1])
            if status == ANY_ERROR:
                assert got in ERRORS, head
            else:
                assert got == status, head
            if got == 101:
                round_trip(raw, "through the fuzzed handshake")
                raw.send_frame(wire.CLOSE, struct.pack("!H", 1000))
                assert raw.recv_close()[0] == 1000
            assert raw.at_eof(timeout=5)
    finally:
        raw.close()
    check_still_serving(served)


@FUZZ
@given(junk=st.binary(min_size=1, max_size=HEADER_LIMIT * 3))
def test_bytes_that_never_end_a_handshake_are_refused_431_once_past_the_header_limit(
    served: Served, junk: bytes
) -> None:
    while b"\r\n\r\n" in junk:
        junk = junk.replace(b"\r\n\r\n", b"\r\n\r.")  # the head never ends
    raw = RawClient(served.game.port, handshake=False)
    raw.sock.settimeout(5)
    try:
        raw.sock.sendall(junk)
        if len(junk) > HEADER_LIMIT:
            assert raw.read_until(b"\r\n").startswith(b"HTTP/1.1 431 "), junk[:60]
            assert raw.at_eof(timeout=5)
        else:
            raw.sock.settimeout(0.05)
            with pytest.raises(TimeoutError):
                raw.sock.recv(1)
    finally:
        raw.close()
    check_still_serving(served)

"""The opening handshake (RFC 6455 section 4) on bytes: parsing, checks, and what each side answers."""

from __future__ import annotations

import base64

import pytest
from wire import (
    ACCEPT,
    BINARY,
    KEY,
    PING,
    PONG,
    REQUEST_HEADERS,
    feed,
    frame,
    read_frames,
    request,
    request_key,
    response,
)

from toad.errors import InvalidHandshake, ProtocolError
from toad.handshake import (
    GUID,
    Headers,
    Response,
    accept_key,
    build_request,
    build_response,
    check_request,
    check_response,
    generate_key,
    parse_request,
    parse_response,
)
from toad.messages import Binary
from toad.protocol import CLIENT, SERVER, Closed, Opened, Protocol, State

# -- keys ---------------------------------------------------------------------


def test_guid_is_the_one_of_section_1_3():
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_accept_key_of_the_rfc_sample_key():
    assert accept_key(KEY) == ACCEPT == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_generated_key_is_16_random_bytes_in_base64():
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16


def test_generated_keys_differ():
    assert len({generate_key() for _ in range(8)}) == 8


# -- headers ------------------------------------------------------------------


def test_header_lookup_ignores_case():
    headers = Headers([("Sec-WebSocket-Key", "abc")])
    assert headers.get("sec-websocket-key") == "abc"
    assert headers["SEC-WEBSOCKET-KEY"] == "abc"
    assert "sec-WebSocket-key" in headers


def test_missing_header_gives_the_default_or_raises_key_error():
    headers = Headers()
    assert headers.get("Host") is None
    assert headers.get("Host", "x") == "x"
    assert "Host" not in headers
    with pytest.raises(KeyError):
        headers["Host"]


def test_repeated_headers_keep_every_value_in_order():
    headers = Headers([("X", "1"), ("Y", "2"), ("x", "3")])
    assert headers.get("X") == "1"
    assert headers.get_all("X") == ["1", "3"]
    assert list(headers) == [("X", "1"), ("Y", "2"), ("x", "3")]
    assert len(headers) == 3


def test_header_tokens_are_split_on_commas_across_fields_and_lower_cased():
    headers = Headers([("Connection", "keep-alive, Upgrade"), ("connection", " Close ,,")])
    assert headers.tokens("Connection") == ["keep-alive", "upgrade", "close"]


# -- parsing heads ------------------------------------------------------------


def test_parse_request_reads_method_path_and_headers():
    parsed = parse_request(request())
    assert (parsed.method, parsed.path) == ("GET", "/chat")
    assert list(parsed.headers) == list(REQUEST_HEADERS)


def test_parse_request_strips_spaces_and_tabs_around_header_values():
    parsed = parse_request(b"GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n")
    assert parsed.headers["Host"] == "a"


def test_parse_request_rejects_http_1_0_with_505():
    with pytest.raises(InvalidHandshake) as info:
        parse_request(request(start_line="GET / HTTP/1.0"))
    assert info.value.status == 505


@pytest.mark.parametrize("line", ["GET /", "GET  / HTTP/1.1", "GET / HTTP/1.1 extra", ""])
def test_parse_request_rejects_a_malformed_request_line_with_400(line):
    with pytest.raises(InvalidHandshake) as info:
        parse_request(request(start_line=line))
    assert info.value.status == 400


@pytest.mark.parametrize(
    "line",
    [b"no colon here", b": empty name", b"Bad Name: x", b"Caf\xe9: x", b" folded: continuation"],
)
def test_parse_request_rejects_a_malformed_header_line(line):
    with pytest.raises(InvalidHandshake) as info:
        parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n")
    assert info.value.status == 400


def test_parse_response_reads_status_reason_and_headers():
    parsed = parse_response(response(KEY))
    assert (parsed.status, parsed.reason) == (101, "Switching Protocols")
    assert parsed.headers["Sec-WebSocket-Accept"] == ACCEPT
    assert parsed.body == b""


def test_parse_response_allows_an_empty_reason():
    assert parse_response(b"HTTP/1.1 404\r\n\r\n")[:2] == (404, "")


@pytest.mark.parametrize("line", ["HTTP/1.1", "HTTP/1.1 abc OK", "ICY 200 OK", "SSH-2.0-OpenSSH"])
def test_parse_response_rejects_a_malformed_status_line(line):
    with pytest.raises(InvalidHandshake):
        parse_response(f"{line}\r\n\r\n".encode())


# -- building heads -----------------------------------------------------------


def test_build_request_writes_the_headers_of_section_4_1():
    data = build_request("example.com", 80, "/chat?room=1", KEY)
    assert data == (
        b"GET /chat?room=1 HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )


def test_build_request_puts_a_non_default_port_in_the_host_header():
    assert b"\r\nHost: example.com:8001\r\n" in build_request("example.com", 8001, "/", KEY)


def test_build_request_leaves_out_the_default_tls_port():
    assert b"\r\nHost: example.com\r\n" in build_request("example.com", 443, "/", KEY, secure=True)


def test_build_request_brackets_an_ipv6_host():
    assert b"\r\nHost: [::1]:8001\r\n" in build_request("::1", 8001, "/", KEY)


def test_build_request_offers_subprotocols_and_sends_origin_and_extra_headers():
    data = build_request(
        "h", 80, "/", KEY, subprotocols=["chat", "v2"], origin="http://game", extra_headers=[("A", "b")]
    )
    assert b"\r\nSec-WebSocket-Protocol: chat, v2\r\n" in data
    assert b"\r\nOrigin: http://game\r\n" in data
    assert data.endswith(b"\r\nA: b\r\n\r\n")


def test_build_response_101_has_no_body_headers():
    data = build_response(101, "Switching Protocols", [("Upgrade", "websocket")])
    assert data == b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"


def test_build_response_error_has_content_length_and_closes():
    data = build_response(400, "Bad Request", body=b"nope\n")
    assert data == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n"


# -- check_request ------------------------------------------------------------


def test_check_request_returns_the_accept_key():
    assert check_request(parse_request(request())) == (ACCEPT, None)


def test_check_request_accepts_tokens_in_any_case_and_among_others():
    data = request(
        drop=("Upgrade", "Connection"),
        extra=(("upgrade", "WebSocket"), ("connection", "keep-alive, UPGRADE")),
    )
    assert check_request(parse_request(data))[0] == ACCEPT


def test_check_request_picks_the_clients_first_supported_subprotocol():
    data = request(extra=(("Sec-WebSocket-Protocol", "v1, chat"), ("Sec-WebSocket-Protocol", "v2")))
    assert check_request(parse_request(data), ["v2", "chat"])[1] == "chat"


def test_check_request_picks_no_subprotocol_when_none_is_shared():
    data = request(extra=(("Sec-WebSocket-Protocol", "v1"),))
    assert check_request(parse_request(data), ["v2"])[1] is None


def test_check_request_ignores_offered_subprotocols_when_the_server_has_none():
    data = request(extra=(("Sec-WebSocket-Protocol", "v1"),))
    assert check_request(parse_request(data))[1] is None


# -- the server's answers on bytes --------------------------------------------


def _serve(data: bytes, **kwargs):
    protocol = Protocol(SERVER, **kwargs)
    events = protocol.receive_data(data)
    return protocol, events, protocol.data_to_send()


def test_server_answers_a_valid_request_with_the_rfc_101():
    protocol, _, out = _serve(request())
    assert out == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Server: toad\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert protocol.state is State.OPEN


def test_server_reports_the_request_in_the_opened_event():
    protocol, events, _ = _serve(request())
    (opened,) = events
    assert type(opened) is Opened
    assert opened.request.path == "/chat"
    assert opened.request.headers["Host"] == "localhost:8001"
    assert opened.response is None
    assert opened.subprotocol is None
    assert protocol.request is opened.request


def test_server_echoes_the_subprotocol_it_chose():
    protocol, events, out = _serve(request(extra=(("Sec-WebSocket-Protocol", "v1, chat"),)), subprotocols=["chat"])
    assert b"\r\nSec-WebSocket-Protocol: chat\r\n" in out
    assert events[0].subprotocol == protocol.subprotocol == "chat"


def test_server_without_a_shared_subprotocol_sends_no_protocol_header():
    _, events, out = _serve(request(extra=(("Sec-WebSocket-Protocol", "v1"),)), subprotocols=["chat"])
    assert type(events[0]) is Opened
    assert b"Sec-WebSocket-Protocol" not in out


def test_server_accepts_an_allowed_origin():
    _, events, _ = _serve(request(extra=(("Origin", "http://game.example"),)), origins=["http://game.example"])
    assert type(events[0]) is Opened


@pytest.mark.parametrize("extra", [(("Origin", "http://evil.example"),), ()], ids=["other-origin", "no-origin"])
def test_server_refuses_an_origin_outside_the_allow_list_with_403(extra):
    _, events, out = _serve(request(extra=extra), origins=["http://game.example"])
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert events[0].error.status == 403


def _refusal(data: bytes, **kwargs):
    protocol, events, out = _serve(data, **kwargs)
    assert protocol.state is State.CLOSED
    (closed,) = events
    assert type(closed) is Closed
    assert isinstance(closed.error, InvalidHandshake)
    assert closed.code == closed.error.close_code == 1002
    status = int(out.split(b" ", 2)[1])
    assert closed.error.status == status
    head, _, body = out.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"\r\nConnection: close" in head
    return status, head, body


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request(drop=("Host",)), 400),
        (request(drop=("Sec-WebSocket-Key",)), 400),
        (request(extra=(("Sec-WebSocket-Key", KEY),)), 400),
        (request(drop=("Sec-WebSocket-Key",), extra=(("Sec-WebSocket-Key", "c2hvcnQ="),)), 400),
        (request(drop=("Sec-WebSocket-Key",), extra=(("Sec-WebSocket-Key", "not base64 at all!!!!"),)), 400),
        (request(drop=("Sec-WebSocket-Key",), extra=(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"),)), 400),
        (request(start_line="POST /chat HTTP/1.1"), 405),
        (request(drop=("Upgrade",)), 426),
        (request(drop=("Upgrade",), extra=(("Upgrade", "h2c"),)), 426),
        (request(drop=("Connection",)), 426),
        (request(drop=("Connection",), extra=(("Connection", "keep-alive"),)), 426),
        (request(drop=("Sec-WebSocket-Version",)), 426),
        (request(drop=("Sec-WebSocket-Version",), extra=(("Sec-WebSocket-Version", "8"),)), 426),
        (request(extra=(("Sec-WebSocket-Version", "13"),)), 426),
        (request(start_line="GET /chat HTTP/1.0"), 505),
        (request(start_line="GET /chat HTTP/2.0"), 505),
        (request(start_line="HELLO"), 400),
        (request(extra=(("Bad Header", "x"),)), 400),
    ],
    ids=[
        "no-host",
        "no-key",
        "two-keys",
        "key-too-short",
        "key-not-base64",
        "key-unpadded",
        "post",
        "no-upgrade",
        "upgrade-not-websocket",
        "no-connection",
        "connection-without-upgrade",
        "no-version",
        "version-8",
        "two-versions",
        "http-1.0",
        "http-2.0",
        "bad-request-line",
        "bad-header-name",
    ],
)
def test_server_refuses_a_bad_request_with_its_status(data, status):
    assert _refusal(data)[0] == status


@pytest.mark.parametrize(
    "data",
    [request(drop=("Upgrade",)), request(drop=("Sec-WebSocket-Version",), extra=(("Sec-WebSocket-Version", "8"),))],
    ids=["no-upgrade", "version-8"],
)
def test_server_426_names_the_version_it_speaks(data):
    status, head, _ = _refusal(data)
    assert status == 426
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in head
    assert b"\r\nUpgrade: websocket\r\n" in head


def test_server_refusal_explains_itself_in_the_body():
    _, _, body = _refusal(request(drop=("Upgrade",)))
    assert b"websocket" in body.lower()


def test_server_refuses_an_oversized_head_with_431_once_it_has_the_blank_line():
    data = request(extra=(("X-Padding", "a" * 300),))
    assert _refusal(data, max_header_size=200)[0] == 431


def test_server_refuses_an_oversized_head_with_431_before_the_blank_line_arrives():
    protocol = Protocol(SERVER, max_header_size=200)
    assert protocol.receive_data(b"GET / HTTP/1.1\r\nX-Padding: " + b"a" * 150) == []
    (closed,) = protocol.receive_data(b"a" * 100)
    assert closed.error.status == 431
    assert protocol.data_to_send().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_server_accepts_a_head_of_exactly_the_limit():
    data = request()
    _, events, _ = _serve(data, max_header_size=len(data))
    assert type(events[0]) is Opened


def test_server_waits_for_the_blank_line():
    protocol = Protocol(SERVER)
    assert protocol.receive_data(request()[:-2]) == []
    assert protocol.data_to_send() == b""
    assert protocol.state is State.CONNECTING


def test_server_reads_a_head_split_into_single_bytes():
    protocol = Protocol(SERVER)
    data = request()
    events = feed(protocol, [data[i : i + 1] for i in range(len(data))])
    assert [type(e) for e in events] == [Opened]
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in protocol.data_to_send()


def test_server_reads_frames_pipelined_right_after_the_head():
    protocol = Protocol(SERVER)
    events = protocol.receive_data(request() + frame(BINARY, b"early") + frame(BINARY, b"bird"))
    assert [type(e) for e in events] == [Opened, Binary, Binary]
    assert events[1:] == [b"early", b"bird"]


def test_server_reads_a_pipelined_frame_split_across_the_heads_last_chunk():
    protocol = Protocol(SERVER)
    data = request() + frame(BINARY, b"early")
    head_end = len(request())
    assert [type(e) for e in protocol.receive_data(data[: head_end + 3])] == [Opened]
    assert protocol.receive_data(data[head_end + 3 :]) == [b"early"]


def test_server_ignores_everything_after_refusing():
    protocol, _, _ = _serve(request(drop=("Host",)))
    assert protocol.receive_data(request()) == []
    assert protocol.data_to_send() == b""


# -- the client's side --------------------------------------------------------


def _client(**kwargs):
    protocol = Protocol(CLIENT, **kwargs)
    protocol.connect("localhost", 8001, "/chat")
    sent = protocol.data_to_send()
    return protocol, sent, request_key(sent)


def test_client_sends_a_request_the_server_accepts():
    _, sent, key = _client()
    server = Protocol(SERVER)
    assert [type(e) for e in server.receive_data(sent)] == [Opened]
    assert server.request.path == "/chat"
    assert server.request.headers["Host"] == "localhost:8001"
    assert len(base64.b64decode(key)) == 16


def test_client_and_server_protocols_complete_the_handshake_together():
    client = Protocol(CLIENT, subprotocols=["v2", "v1"])
    server = Protocol(SERVER, subprotocols=["v1"])
    client.connect("localhost", 8001, origin="http://game")
    server.receive_data(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    assert [type(e) for e in events] == [Opened]
    assert client.subprotocol == server.subprotocol == "v1"
    assert server.request.headers["Origin"] == "http://game"


def test_client_opens_on_a_good_response():
    client, _, key = _client()
    (opened,) = client.receive_data(response(key))
    assert type(opened) is Opened
    assert opened.request is None
    assert opened.response.status == 101
    assert client.state is State.OPEN
    assert client.data_to_send() == b""


def test_client_reads_a_response_split_into_single_bytes():
    client, _, key = _client()
    data = response(key)
    events = feed(client, [data[i : i + 1] for i in range(len(data))])
    assert [type(e) for e in events] == [Opened]


def test_client_reads_frames_pipelined_after_the_response():
    client, _, key = _client()
    events = client.receive_data(response(key) + frame(BINARY, b"hi", masked=False))
    assert [type(e) for e in events] == [Opened, Binary]
    assert events[1] == b"hi"


def test_client_accepts_the_subprotocol_it_offered():
    client, _, key = _client(subprotocols=["chat"])
    (opened,) = client.receive_data(response(key, extra=(("Sec-WebSocket-Protocol", "chat"),)))
    assert opened.subprotocol == client.subprotocol == "chat"


def _client_failure(data: bytes, **kwargs) -> InvalidHandshake:
    client, _, key = _client(**kwargs)
    (closed,) = client.receive_data(data.replace(b"{accept}", accept_key(key).encode()))
    assert type(closed) is Closed
    assert closed.code == 1002
    assert isinstance(closed.error, InvalidHandshake)
    assert client.state is State.CLOSED
    assert client.data_to_send() == b""  # nothing to answer a bad handshake with
    assert client.receive_data(b"\x81\x00") == []
    return closed.error


def test_client_fails_on_a_wrong_accept():
    error = _client_failure(response(KEY))  # the accept of another key
    assert "Sec-WebSocket-Accept" in str(error)


def test_client_fails_on_a_missing_accept():
    _client_failure(response(KEY, drop=("Sec-WebSocket-Accept",)))


def test_client_fails_on_a_non_101_status_and_keeps_the_status_and_body():
    client, _, key = _client()
    (closed,) = client.receive_data(response(key, status_line="HTTP/1.1 404 Not Found", body=b"gone"))
    assert closed.error.status == 404
    assert "404" in str(closed.error)
    assert client.response.status == 404
    assert client.response.body == b"gone"


def test_client_fails_on_a_missing_upgrade_header():
    _client_failure(b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")


def test_client_fails_on_a_missing_connection_header():
    _client_failure(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")


def test_client_fails_on_an_extension_it_did_not_ask_for():
    ok = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    error = _client_failure(ok + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    assert "extension" in str(error)


def test_client_fails_on_a_subprotocol_it_did_not_offer():
    ok = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    error = _client_failure(ok + b"Sec-WebSocket-Protocol: chat\r\n\r\n", subprotocols=["v1"])
    assert "subprotocol" in str(error)


def test_client_fails_on_a_subprotocol_when_it_offered_none():
    ok = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    _client_failure(ok + b"Sec-WebSocket-Protocol: chat\r\n\r\n")


def test_client_fails_on_a_malformed_status_line():
    error = _client_failure(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
    assert error.status == 0


def test_client_fails_on_an_oversized_response_head():
    error = _client_failure(b"HTTP/1.1 101 OK\r\nX: " + b"a" * 400, max_header_size=300)
    assert "response header is too large" in str(error)
    assert error.status == 0  # the client read no status: 431 is what a server answers


# -- the direct checks of a response --------------------------------------------


def _ok_response(*extra: tuple[str, str]) -> Response:
    return Response(101, "OK", Headers([("Upgrade", "websocket"), ("Connection", "Upgrade"), *extra]))


def test_check_response_returns_none_without_a_subprotocol():
    assert check_response(_ok_response(("Sec-WebSocket-Accept", ACCEPT)), KEY) is None


def test_check_response_rejects_two_accept_headers():
    rsp = _ok_response(("Sec-WebSocket-Accept", ACCEPT), ("Sec-WebSocket-Accept", ACCEPT))
    with pytest.raises(InvalidHandshake):
        check_response(rsp, KEY)


def test_check_response_rejects_two_subprotocols():
    rsp = _ok_response(
        ("Sec-WebSocket-Accept", ACCEPT), ("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b")
    )
    with pytest.raises(InvalidHandshake):
        check_response(rsp, KEY, ["a", "b"])


def test_invalid_handshake_is_a_protocol_error_with_code_1002():
    error = InvalidHandshake("x", status=426)
    assert isinstance(error, ProtocolError)
    assert (error.close_code, error.status) == (1002, 426)


def test_server_frames_after_a_pipelined_head_are_unmasked_replies():
    # A Ping pipelined after the head is answered right after the 101.
    protocol = Protocol(SERVER)
    protocol.receive_data(request() + frame(PING, b"p"))
    out = protocol.data_to_send()
    head, _, frames = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert [(f.opcode, f.masked, f.payload) for f in read_frames(frames)] == [(PONG, False, b"p")]

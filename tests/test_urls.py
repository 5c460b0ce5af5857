"""Reading URLs, hosts and ports (RFC 6455 section 3), with errors that say what to fix."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toad
from toad.errors import InvalidAddress, InvalidURL, UsageError
from toad.urls import WebSocketURL, parse_host, parse_port, parse_url


def _assert_helpful(error: Exception, *words: str) -> None:
    """A toad message: starts lower-case (or with the quoted value), and names what to fix."""
    message = str(error)
    assert message
    assert not message[0].isupper(), message
    for word in words:
        assert word in message, message


# -- parse_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://localhost:8001", (False, "localhost", 8001, "/")),
        ("wss://example.com:8443/", (True, "example.com", 8443, "/")),
        ("http://localhost:8001", (False, "localhost", 8001, "/")),
        ("https://example.com:8443", (True, "example.com", 8443, "/")),
    ],
    ids=["ws", "wss", "http-means-ws", "https-means-wss"],
)
def test_url_schemes(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "port"),
    [("ws://example.com", 80), ("http://example.com", 80), ("wss://example.com", 443), ("https://example.com", 443)],
)
def test_url_without_a_port_gets_the_schemes_default_port(url, port):
    assert parse_url(url).port == port


def test_url_without_a_path_asks_for_the_root():
    assert parse_url("ws://localhost:8001").path == "/"


def test_url_keeps_its_path_and_query_as_the_resource_name():
    assert parse_url("ws://localhost:8001/lobby/2?name=frog&team=red").path == "/lobby/2?name=frog&team=red"


def test_url_with_only_a_query_gets_the_root_path():
    assert parse_url("ws://localhost?room=1").path == "/?room=1"


def test_url_scheme_and_host_are_case_insensitive():
    assert parse_url("WSS://LocalHost:9000/Game") == (True, "localhost", 9000, "/Game")


def test_url_surrounding_spaces_are_ignored():
    assert parse_url("  ws://localhost:8001  ") == (False, "localhost", 8001, "/")


def test_url_with_an_ipv6_host():
    assert parse_url("ws://[::1]:8001/") == (False, "::1", 8001, "/")


def test_url_ignores_user_info_for_the_host():
    assert parse_url("ws://user:secret@example.com:81/").host == "example.com"


def test_parsed_url_prints_as_a_ws_url_with_its_port():
    assert str(parse_url("https://example.com/game?x=1")) == "wss://example.com:443/game?x=1"
    assert str(parse_url("ws://[::1]:9/")) == "ws://[::1]:9/"


def test_parsed_url_is_a_named_tuple():
    url = parse_url("ws://localhost:8001/x")
    assert isinstance(url, WebSocketURL)
    assert (url.secure, url.host, url.port, url.path) == (False, "localhost", 8001, "/x")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # Section 3: fragment identifiers MUST NOT be used in WebSocket URIs.
        *[
            (u, ("fragment", "remove it"))
            for u in ("ws://localhost:8001/#top", "ws://localhost#", "wss://example.com/game?x=1#frag")
        ],
        *[
            (u, ("scheme", "ws://"))
            for u in ("ftp://localhost", "tcp://localhost:8001", "file:///tmp/x", "wx://localhost")
        ],
        *[(u, ("no scheme", "ws://")) for u in ("localhost:8001", "localhost", "", "   ", "//localhost:8001")],
        *[(u, ("no host", "ws://localhost:8001")) for u in ("ws://", "ws://:8001", "ws:///path", "http://")],
        ("ws://localhost:0", ("port 0",)),
        *[
            (u, ("not a valid URL", "ws://localhost:8001"))
            for u in ("ws://localhost:99999", "ws://localhost:65536", "ws://localhost:abc", "ws://localhost:-1")
        ],
        ("ws://[::1:8001/", ("not a valid URL",)),
    ],
)
def test_a_bad_url_is_rejected_with_a_hint(url, words):
    with pytest.raises(InvalidURL) as info:
        parse_url(url)
    _assert_helpful(info.value, *words)


@pytest.mark.parametrize("url", [None, 8001, b"ws://localhost:8001", ("localhost", 8001)])
def test_url_that_is_not_a_string_is_rejected(url):
    with pytest.raises(InvalidURL) as info:
        parse_url(url)
    _assert_helpful(info.value, "must be a string", type(url).__name__)


def test_url_errors_are_usage_errors_and_value_errors():
    with pytest.raises(ValueError):
        parse_url("ftp://x")
    assert issubclass(InvalidURL, UsageError)
    assert toad.InvalidURL is InvalidURL


@settings(max_examples=300, deadline=None)
@given(
    url=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda scheme, rest: scheme + "://" + rest,
            st.sampled_from(["ws", "wss", "http", "https", "WS", "ftp", ""]),
            st.text(max_size=30),
        ),
    )
)
def test_any_string_parses_or_raises_invalid_url(url):
    try:
        parsed = parse_url(url)
    except InvalidURL as exc:
        _assert_helpful(exc)
    else:
        assert 1 <= parsed.port <= 65535
        assert parsed.host
        assert parsed.path.startswith("/")
        assert "#" not in parsed.path


# -- parse_host ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://localhost", "localhost"),
        ("http://localhost/", "localhost"),
        ("ws://localhost", "localhost"),
        ("https://example.com", "example.com"),
        ("http://0.0.0.0", "0.0.0.0"),
    ],
)
def test_host_given_as_a_url_like_the_seed_gives_just_the_host(host, expected):
    assert parse_host(host) == expected


@pytest.mark.parametrize("host", ["localhost", "0.0.0.0", "127.0.0.1", "game.example.com", "::1"])
def test_plain_host_is_kept(host):
    assert parse_host(host) == host


@pytest.mark.parametrize("host", ["[::1]", "http://[::1]"])
def test_bracketed_ipv6_host_loses_its_brackets(host):
    assert parse_host(host) == "::1"


@pytest.mark.parametrize("host", [None, ""])
def test_no_host_means_every_interface(host):
    assert parse_host(host) == ""


def test_host_surrounding_spaces_are_ignored():
    assert parse_host(" localhost ") == "localhost"


@pytest.mark.parametrize("host", ["http://localhost:8001", "http://localhost/game"])
def test_host_url_with_a_port_or_path_is_rejected(host):
    with pytest.raises(InvalidAddress) as info:
        parse_host(host)
    _assert_helpful(info.value, "port=")


def test_host_url_with_another_scheme_is_rejected():
    with pytest.raises(InvalidAddress) as info:
        parse_host("ftp://localhost")
    _assert_helpful(info.value, "scheme", "localhost")


@pytest.mark.parametrize("host", ["local host", "localhost/game", "localhost?x", "localhost#x"])
def test_host_that_is_not_a_host_name_is_rejected(host):
    with pytest.raises(InvalidAddress) as info:
        parse_host(host)
    _assert_helpful(info.value, "not a host name")


def test_host_url_with_a_broken_ipv6_address_is_rejected():
    with pytest.raises(InvalidAddress) as info:
        parse_host("http://[::1")
    _assert_helpful(info.value, "not valid")


@pytest.mark.parametrize("host", [8001, b"localhost", ("localhost", 8001)])
def test_host_that_is_not_a_string_is_rejected(host):
    with pytest.raises(InvalidAddress) as info:
        parse_host(host)
    _assert_helpful(info.value, "must be a string")


@settings(max_examples=300, deadline=None)
@given(host=st.one_of(st.text(max_size=30), st.builds(lambda rest: "http://" + rest, st.text(max_size=30))))
def test_any_string_gives_a_host_or_raises_invalid_address(host):
    try:
        parsed = parse_host(host)
    except InvalidAddress as exc:
        _assert_helpful(exc)
    else:
        assert isinstance(parsed, str)
        assert not any(c in parsed for c in "/ ?#")


# -- parse_port ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "expected"),
    [(8001, 8001), (0, 0), (65535, 65535), ("8001", 8001), (" 80 ", 80), ("80\x1f", 80)],
)
def test_port_accepts_whole_numbers_and_digit_strings(port, expected):
    assert parse_port(port) == expected


@pytest.mark.parametrize("port", [-1, 65536, 100_000])
def test_port_out_of_range_is_rejected(port):
    with pytest.raises(InvalidAddress) as info:
        parse_port(port)
    _assert_helpful(info.value, "out of range", "65535")


@pytest.mark.parametrize("port", [True, False, 80.0, None, "abc", "", "80.5", "-1", "²", [80]])
def test_port_that_is_not_a_whole_number_is_rejected(port):
    with pytest.raises(InvalidAddress) as info:
        parse_port(port)
    _assert_helpful(info.value, "whole number", "8001")


@settings(max_examples=300, deadline=None)
@given(port=st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(), st.booleans()))
def test_any_value_gives_a_port_or_raises_invalid_address(port):
    try:
        parsed = parse_port(port)
    except InvalidAddress as exc:
        _assert_helpful(exc)
    else:
        assert type(parsed) is int
        assert 0 <= parsed <= 65535

"""Text and Binary: the two kinds of message, as plain str and bytes with a contains()."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toad
from toad.messages import Binary, Text


def test_text_is_a_str():
    assert isinstance(Text("hi"), str)


def test_binary_is_bytes():
    assert isinstance(Binary(b"hi"), bytes)


def test_text_equals_the_plain_string():
    assert Text("hello") == "hello"
    assert "hello" == Text("hello")


def test_binary_equals_the_plain_bytes():
    assert Binary(b"\x00\x01") == b"\x00\x01"
    assert b"\x00\x01" == Binary(b"\x00\x01")


def test_text_never_equals_bytes():
    assert Text("hi") != b"hi"


def test_binary_never_equals_str():
    assert Binary(b"hi") != "hi"


def test_messages_hash_like_their_plain_values():
    assert {Text("a"): 1}["a"] == 1
    assert {Binary(b"a"): 1}[b"a"] == 1


def test_text_behaves_like_str():
    message = Text("move 3 4")
    assert message.split() == ["move", "3", "4"]
    assert message[:4] == "move"
    assert message.startswith("move")
    assert len(message) == 8


def test_binary_behaves_like_bytes():
    message = Binary(b"\x01\x02\x03")
    assert message[0] == 1
    assert message[1:] == b"\x02\x03"
    assert len(message) == 3


def test_messages_have_no_instance_dict():
    # __slots__ = (): a message costs what its str or bytes costs.
    assert not hasattr(Text("x"), "__dict__")
    assert not hasattr(Binary(b"x"), "__dict__")


def test_messages_are_exported_by_toad():
    assert toad.Text is Text
    assert toad.Binary is Binary


@pytest.mark.parametrize(
    ("message", "part", "expected"),
    [
        (Text("yellow submarine"), "yellow", True),
        (Text("yellow submarine"), "purple", False),
        (Text("yellow submarine"), b"sub", True),
        (Text("yellow submarine"), bytearray(b"marine"), True),
        (Text("yellow submarine"), b"SUB", False),
        (Text("café"), "é".encode(), True),
        (Text("anything"), "", True),
        (Text("anything"), b"", True),
        (Binary(b"\x00yellow\xff"), b"yellow", True),
        (Binary(b"\x00yellow\xff"), b"purple", False),
        (Binary(b"\x00yellow\xff"), "yellow", True),
        (Binary("café".encode()), "é", True),
        (Binary(b"\x00yellow\xff"), bytearray(b"\xff"), True),
        (Binary(b"anything"), "", True),
    ],
)
def test_contains(message, part, expected):
    assert message.contains(part) is expected


def test_text_contains_reads_invalid_utf8_bytes_without_raising():
    assert Text("abc").contains(b"\xff") is False


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=20), part=st.text(max_size=5))
def test_text_contains_a_str_or_its_utf8_bytes_alike(text, part):
    message = Text(text)
    assert message.contains(part) is (part in text)
    assert message.contains(part.encode()) is (part in text)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=20), part=st.text(max_size=5))
def test_binary_contains_a_str_as_its_utf8_bytes(data, part):
    assert Binary(data).contains(part) is (part.encode() in data)

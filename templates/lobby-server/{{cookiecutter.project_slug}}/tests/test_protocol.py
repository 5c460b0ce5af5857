"""protocol.py: every message is checked before the lobby sees it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import protocol
from {{ cookiecutter.package_name }}.protocol import ProtocolError


def code_of(message: str | bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(message)
    return caught.value.code


def test_good_messages_become_requests() -> None:
    assert protocol.decode('{"type": "hello", "name": "  Ana  "}') == protocol.Hello("Ana")
    assert protocol.decode('{"type": "hello", "name": "Zoë 🐸", "token": "abc"}') == protocol.Hello("Zoë 🐸", "abc")
    assert protocol.decode('{"type": "create", "name": "arena"}') == protocol.Create("arena", None, False)
    assert protocol.decode('{"type": "create", "name": "x", "capacity": 4, "private": true}') == protocol.Create(
        "x", 4, True
    )
    assert protocol.decode('{"type": "join", "room": "r1"}') == protocol.Join("r1", None)
    assert protocol.decode('{"type": "join", "code": " abcd "}') == protocol.Join(None, "ABCD")
    assert protocol.decode('{"type": "leave"}') == protocol.Leave()
    assert protocol.decode('{"type": "ready", "ready": false}') == protocol.Ready(False)
    assert protocol.decode('{"type": "start"}') == protocol.Start()
    assert protocol.decode('{"type": "chat", "text": "hi"}') == protocol.Chat("hi")
    assert protocol.decode('{"type": "input", "seq": 3, "input": {"dx": 1}}') == protocol.Input(3, {"dx": 1})
    assert protocol.decode('{"type": "input", "seq": 9007199254740991, "input": {}}').seq == 2**53 - 1
    assert protocol.decode('{"type": "kick", "player": "p2"}') == protocol.Kick("p2")


def test_extra_fields_are_ignored() -> None:
    assert protocol.decode('{"type": "start", "please": true}') == protocol.Start()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b'{"type": "hello", "name": "Ana"}', "bad_json"),
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"hello"', "bad_json"),
        ("[" * 3000 + "]" * 3000, "too_large"),
        ("[" * 2000 + "]" * 2000, "bad_json"),
        ('{"name": "Ana"}', "bad_message"),
        ('{"type": 7}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "hello"}', "bad_message"),
        ('{"type": "hello", "name": "   "}', "bad_message"),
        ('{"type": "hello", "name": "seventeen chars!!"}', "bad_message"),
        ('{"type": "hello", "name": "a\\nb"}', "bad_message"),
        ('{"type": "hello", "name": "\\ud800"}', "bad_message"),
        ('{"type": "hello", "name": "Ana", "token": 5}', "bad_message"),
        ('{"type": "create", "name": "' + "x" * 25 + '"}', "bad_message"),
        ('{"type": "create", "name": "x", "capacity": "4"}', "bad_message"),
        ('{"type": "create", "name": "x", "capacity": true}', "bad_message"),
        ('{"type": "create", "name": "x", "private": 1}', "bad_message"),
        ('{"type": "join"}', "bad_message"),
        ('{"type": "join", "room": "r1", "code": "ABCD"}', "bad_message"),
        ('{"type": "join", "room": 1}', "bad_message"),
        ('{"type": "ready"}', "bad_message"),
        ('{"type": "ready", "ready": "yes"}', "bad_message"),
        ('{"type": "chat", "text": ""}', "bad_message"),
        ('{"type": "chat", "text": "' + "x" * 201 + '"}', "bad_message"),
        ('{"type": "input", "seq": -1, "input": {}}', "bad_message"),
        ('{"type": "input", "seq": 1.5, "input": {}}', "bad_message"),
        ('{"type": "input", "seq": 1, "input": [1]}', "bad_message"),
        ('{"type": "input", "seq": 9007199254740992, "input": {}}', "bad_message"),
        ('{"type": "input", "seq": 1e300, "input": {}}', "bad_message"),
        ('{"type": "input", "seq": 1.0, "input": {}}', "bad_message"),
        ('{"type": "input", "seq": true, "input": {}}', "bad_message"),
        ('{"type": "kick"}', "bad_message"),
        ('{"type": "kick", "player": 2}', "bad_message"),
        ('{"type": "chat", "text": "' + "é" * 2100 + '"}', "too_large"),
    ],
)
def test_bad_messages_get_their_error_code(message: str | bytes, code: str) -> None:
    assert code_of(message) == code


INVISIBLE = [
    "\u034f",  # combining grapheme joiner (Mn)
    "\u200b\u200b",  # zero-width spaces (Cf)
    "\u0301\u0301",  # combining accents on nothing (Mn)
    "\u20dd",  # combining enclosing circle (Me)
    "\u2028",  # line separator (Zl)
    "\u3000\u00a0",  # wide and no-break spaces (Zs)
    "\ufeff",  # byte order mark (Cf)
    "\u200d",  # a zero-width joiner alone
]


@pytest.mark.parametrize("blank", INVISIBLE)
def test_names_and_chat_must_show_something(blank: str) -> None:
    for kind, field in (("hello", "name"), ("create", "name"), ("chat", "text")):
        assert code_of(json.dumps({"type": kind, field: blank})) == "bad_message", (kind, blank)
        assert code_of(json.dumps({"type": kind, field: f" {blank} "})) == "bad_message", (kind, blank)


def test_names_refuse_formatting_characters_but_the_emoji_joiner() -> None:
    for name in ("A\u200bna", "\u202eAna", "Ana\u2066", "An\u00ada", "Ana\x7f"):
        assert code_of(json.dumps({"type": "hello", "name": name})) == "bad_message", name
        assert code_of(json.dumps({"type": "create", "name": name})) == "bad_message", name
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji of three, glued by joiners
    assert protocol.decode(json.dumps({"type": "hello", "name": f" Zoë {family} "})) == protocol.Hello(f"Zoë {family}")
    assert protocol.decode(json.dumps({"type": "hello", "name": "e\u0301"})) == protocol.Hello("e\u0301")
    assert protocol.decode(json.dumps({"type": "create", "name": "🐸\ufe0f room"})).name == "🐸\ufe0f room"
    # Chat only needs something visible: a zero-width space inside a line is harmless there.
    assert protocol.decode(json.dumps({"type": "chat", "text": "a\u200bb"})) == protocol.Chat("a\u200bb")


def test_the_readme_documents_every_message_and_error_code() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    for kind in protocol.TYPES:
        assert f"| `{kind}` |" in readme, kind
    package = Path(protocol.__file__).parent
    source = "".join((package / name).read_text(encoding="utf-8") for name in ("protocol.py", "lobby.py"))
    codes = set(re.findall(r'ProtocolError\(\s*"(\w+)"', source))
    assert {"bad_json", "not_now", "kicked"} <= codes
    errors = readme[readme.index("Error codes:") :].split("\n\n")[0]
    for code in codes:
        assert f"`{code}`" in errors, code
    assert "`total`" in readme and '"kicked"' in readme


def test_the_error_says_which_message_it_is_about() -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode('{"type": "chat", "text": 5}')
    error = caught.value.to_message()
    assert error["type"] == "error" and error["code"] == "bad_message" and error["about"] == "chat"
    assert error["message"].endswith(".")
    with pytest.raises(ProtocolError) as caught:
        protocol.decode('{"type": "' + "x" * 500 + '"}')
    assert caught.value.about is None and len(caught.value.message) < 100


def test_encode_is_compact_json_that_keeps_unicode() -> None:
    text = protocol.encode({"type": "chat", "text": "Zoë 🐸", "from": None})
    assert text == '{"type":"chat","text":"Zoë 🐸","from":null}'
    assert json.loads(text)["text"] == "Zoë 🐸"

"""This template's Jinja extension: ``|tojson`` writes a string literal that Python, TOML and ruff all accept.

Jinja's own ``tojson`` has two problems here. It escapes every non-ASCII character, so an emoji becomes a
surrogate pair (``"\\ud83d\\udc38"``) that JSON reads back as one character but Python reads as two lone
surrogates (which cannot even be printed) and TOML refuses outright. And it leaves ``"`` as ``\\"``, which
``ruff format`` rewrites to a single-quoted string, so a project named ``Zoë's "Big" Game`` would not
pass ``ruff format --check``.

So a string is written in double quotes with every character as itself except ``"``, ``\\`` and
control characters, which become ``\\u0022``, ``\\\\`` and ``\\uXXXX``: escapes that mean the same in
JSON, in a Python string literal and in a TOML basic string, and no double quote inside for a formatter
to swap for single quotes. Anything else (a number) is plain JSON.

The module has a name of its own because cookiecutter imports it from the template's folder, and Python
keeps one module per name for the whole process (another template's extension must not shadow it).
"""

import json

from jinja2 import Environment
from jinja2.ext import Extension


def literal(value: object) -> str:
    if not isinstance(value, str):
        return json.dumps(value)
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"' or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


class UnicodeJsonExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["tojson"] = literal

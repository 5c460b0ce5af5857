"""Refuse answers that would bake a project that cannot work, with one line that says what to do."""

import keyword
import re
import sys
import unicodedata

PROJECT_NAME = {{ cookiecutter.project_name|tojson }}
DESCRIPTION = {{ cookiecutter.description|tojson }}
PROJECT_SLUG = {{ cookiecutter.project_slug|tojson }}
PACKAGE_NAME = {{ cookiecutter.package_name|tojson }}
NUMBERS = {
    "port": ({{ cookiecutter.port|tojson }}, 1, 65535),
    "tick_rate": ({{ cookiecutter.tick_rate|tojson }}, 1, 120),
    "room_capacity": ({{ cookiecutter.room_capacity|tojson }}, 2, 64),
    "rejoin_window": ({{ cookiecutter.rejoin_window|tojson }}, 0, 3600),
}
# Modules the generated project imports, or that its tools import, besides the standard library.
TAKEN = {"toad", "pygame", "pytest", "setuptools", "pip", "test", "tests", "conftest"}


def problems():
    for field, value in (("project_name", PROJECT_NAME), ("description", DESCRIPTION)):
        if any(unicodedata.category(c) == "Cc" for c in value):
            yield f"{field} has a control character (a tab or a line break?): give it as one line of text"
    if not PROJECT_NAME.strip():
        yield "project_name is empty: give your server a name, like project_name='Coin Grab Server'"
    if not PROJECT_SLUG:
        yield (
            f"project_name {PROJECT_NAME!r} has no letters or digits to make a folder name from: "
            "use a project_name with some, or also give project_slug='my-game-server'"
        )
    elif not re.fullmatch(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", PROJECT_SLUG):
        yield (
            f"project_slug {PROJECT_SLUG!r} is not a usable folder and pip name: use lowercase letters, "
            "digits and dashes, like project_slug='my-game-server'"
        )
    elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", PACKAGE_NAME) or keyword.iskeyword(PACKAGE_NAME):
        yield (
            f"package_name {PACKAGE_NAME!r} is not a Python name: give package_name='my_game_server' "
            "(ASCII letters, digits and underscores, not starting with a digit, not a keyword)"
        )
    elif PACKAGE_NAME in TAKEN or PACKAGE_NAME in sys.stdlib_module_names:
        yield (
            f"package_name {PACKAGE_NAME!r} would hide the module of that name that the server needs: "
            f"pick another project_name, or give package_name='{PACKAGE_NAME}_server'"
        )
    for field, (value, low, high) in NUMBERS.items():
        if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            yield f"{field} must be a whole number from {low} to {high}, not {value!r}"


def main():
    found = list(problems())
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

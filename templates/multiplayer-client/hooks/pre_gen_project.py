"""Check the answers before anything is written: one clear line and exit code 1 for a bad one."""

import keyword
import re
import sys
import unicodedata

PROJECT_NAME = {{ cookiecutter.project_name|tojson }}
WINDOW_TITLE = {{ cookiecutter.window_title|tojson }}
DESCRIPTION = {{ cookiecutter.description|tojson }}
PACKAGE_NAME = {{ cookiecutter.package_name|tojson }}
PROJECT_SLUG = {{ cookiecutter.project_slug|tojson }}
SERVER_URL = {{ cookiecutter.server_url|tojson }}

# Modules the generated project imports besides the standard library, and names pytest would confuse.
TAKEN = {"toad", "pygame", "test", "tests", "conftest", "setuptools", "pip"}


def problem() -> str | None:
    """The first thing wrong with the answers, as a sentence that says what to do; None if all is well."""
    for field, value in (("project_name", PROJECT_NAME), ("window_title", WINDOW_TITLE), ("description", DESCRIPTION)):
        if any(unicodedata.category(c) == "Cc" for c in value):
            return f"{field} has a control character (a tab or a line break?): give it as one line of text"
    if not PROJECT_NAME.strip():
        return "project_name is empty: give your game a name, like project_name='Coin Grab'"
    if not PROJECT_SLUG or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", PROJECT_SLUG):
        return (
            f"project_slug {PROJECT_SLUG!r} must be a folder name of letters, digits, '-', '_' or '.': "
            "give project_slug explicitly, e.g. project_slug=my-game"
        )
    if not PACKAGE_NAME.isidentifier() or not PACKAGE_NAME.isascii():
        return (
            f"package_name {PACKAGE_NAME!r} is not a Python identifier: use ASCII letters, digits and "
            "underscores, not starting with a digit, e.g. package_name=my_game"
        )
    if keyword.iskeyword(PACKAGE_NAME) or keyword.issoftkeyword(PACKAGE_NAME):
        return f"package_name {PACKAGE_NAME!r} is a Python keyword: choose another, e.g. package_name=my_{PACKAGE_NAME}"
    if PACKAGE_NAME in sys.stdlib_module_names or PACKAGE_NAME in TAKEN:
        return (
            f"package_name {PACKAGE_NAME!r} would shadow the module of that name (standard library, toad, pygame or pytest's tests): "
            f"choose another, e.g. package_name=my_{PACKAGE_NAME}"
        )
    if not re.fullmatch(r"wss?://[^\s/?#]+(/\S*)?", SERVER_URL):
        return f"server_url {SERVER_URL!r} must start with ws:// or wss:// and name a host, e.g. ws://localhost:8765"
    return None


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(1)

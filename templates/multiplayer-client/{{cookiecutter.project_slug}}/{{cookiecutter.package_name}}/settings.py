"""The answers given when this project was generated, and the client's fixed numbers.

The only module with generated values: everything else imports them from here.
The generated strings are written so that any answer (quotes, backslashes, emoji) is a valid
Python string literal.
"""

# "noqa: E501": an answer may be long (a 150-character name), and a string is not split for ruff's line length.
#: Where the lobby server listens; ``--url`` overrides it.
SERVER_URL: str = {{ cookiecutter.server_url|tojson }}  # noqa: E501
#: The window's title.
WINDOW_TITLE: str = {{ cookiecutter.window_title|tojson }}  # noqa: E501
#: The game's name, shown on the name screen.
NAME: str = {{ cookiecutter.project_name|tojson }}  # noqa: E501

#: The window: the 800×600 arena below a 40-pixel score bar.
WINDOW_SIZE: tuple[int, int] = (800, 640)
#: Frames per second (drawing); inputs go out at the server's tick rate instead.
FPS: int = 60
#: Seconds ``open()`` may take before the name screen says the server cannot be reached.
OPEN_TIMEOUT: float = 5.0
#: The protocol's limits (see the server's README), checked here so the player sees them while typing.
MAX_NAME = 16
MAX_ROOM_NAME = 24
MAX_CHAT = 200

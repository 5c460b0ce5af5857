"""The answers given when this project was generated; the command line overrides most of them."""

NAME = {{ cookiecutter.project_name|tojson }}
PORT = {{ cookiecutter.port|int }}
TICK_RATE = {{ cookiecutter.tick_rate|int }}  # game ticks (and state messages) per second
ROOM_CAPACITY = {{ cookiecutter.room_capacity|int }}  # most players in one room (but never more than Game.MAX_PLAYERS)
REJOIN_WINDOW = {{ cookiecutter.rejoin_window|int }}  # seconds a dropped player's seat is held

"""A pygame-ce client for the lobby server: name, lobby, room and game screens, and a bot.

Run it with ``python -m`` on this package; see the README.
"""

__version__ = "0.1.0"

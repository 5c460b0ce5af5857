"""The two kinds of message: :class:`Text` (a ``str``) and :class:`Binary` (a ``bytes``).

A message is whatever the peer sent, typed by its frame (RFC 6455 section 5.6):
a text frame arrives as :class:`Text`, a binary frame as :class:`Binary`. Both
compare, hash and slice like the built-in type they extend, and both have
:meth:`contains`, so ``message == "hello"`` and ``message.contains("yellow")``
work whichever kind arrived.
"""

from __future__ import annotations

__all__ = ["Binary", "Text"]


class Text(str):
    """A message that arrived in a text frame: a ``str``."""

    __slots__ = ()

    def contains(self, part: str | bytes) -> bool:
        """Whether ``part`` occurs in the message (bytes are read as UTF-8)."""
        if isinstance(part, (bytes, bytearray)):
            part = bytes(part).decode("utf-8", "replace")
        return part in self


class Binary(bytes):
    """A message that arrived in a binary frame: a ``bytes``."""

    __slots__ = ()

    def contains(self, part: str | bytes) -> bool:
        """Whether ``part`` occurs in the message (a ``str`` is looked for as UTF-8)."""
        if isinstance(part, str):
            part = part.encode("utf-8")
        return self.find(part) != -1

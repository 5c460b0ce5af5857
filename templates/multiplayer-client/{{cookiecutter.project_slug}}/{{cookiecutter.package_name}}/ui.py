"""Small widgets on pygame's default font (``pygame.font.Font(None, size)``): no font files to ship.

Each widget has a ``rect``, ``handle(event) -> bool`` (``True`` when it used the
event) and ``draw(surface)``. They call plain functions on click or Enter, so a
scene wires them to the actions in a line each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pygame

# A dark theme with clear contrast.
BG = (17, 19, 26)
PANEL = (28, 32, 43)
PANEL_LIGHT = (40, 45, 60)
BORDER = (66, 72, 92)
TEXT = (232, 234, 240)
MUTED = (148, 154, 170)
ACCENT = (96, 165, 250)
GOOD = (74, 222, 128)
BAD = (248, 113, 113)
GOLD = (250, 204, 21)

_fonts: dict[int, pygame.font.Font] = {}


def font(size: int) -> pygame.font.Font:
    """pygame's default font at ``size`` pixels, made once."""
    if size not in _fonts:
        _fonts[size] = pygame.font.Font(None, size)
    return _fonts[size]


def forget_fonts() -> None:
    """Drop the fonts made so far: call it after ``pygame.quit()``, which invalidates them."""
    _fonts.clear()


def clean(text: str) -> str:
    """``text`` without control characters (the font cannot draw them, the server refuses them).

    Lone surrogates (JSON allows ``"\\ud800"``) go too: they are not printable either.
    """
    return "".join(ch for ch in str(text) if ch.isprintable())


#: What :func:`render` draws instead of a text that would show nothing (or that the font refuses).
PLACEHOLDER = "?"
# What pygame's font may raise for a hostile text: zero width ("Text has zero width"), a null or a
# surrogate the encoder refuses.
_FONT_ERRORS = (pygame.error, ValueError, UnicodeError)


def render(text: str, size: int = 24, color: tuple[int, int, int] = TEXT) -> pygame.Surface:
    """``text`` as an image, on pygame's default font: THE one place the client turns text into pixels.

    Never raises for any text (a player's name or a room name comes from other players): control
    characters are dropped, and a text that would show nothing (empty, or only zero-width or
    combining characters like U+200B or U+034F, which make pygame raise "Text has zero width")
    becomes :data:`PLACEHOLDER`. Draw every text through it (or :func:`draw_text`).
    """
    shown = clean(text)
    try:
        image = font(size).render(shown, True, color)
        if image.get_width() > 0:
            return image
    except _FONT_ERRORS:
        pass
    return font(size).render(PLACEHOLDER, True, color)


def text_width(text: str, size: int) -> int:
    """How wide :func:`render` would draw ``text`` at ``size``, in pixels (never raises)."""
    shown = clean(text)
    try:
        width = font(size).size(shown)[0]
    except _FONT_ERRORS:
        width = 0
    return width if width > 0 else font(size).size(PLACEHOLDER)[0]


def fit(text: str, size: int, width: int) -> str:
    """``text``, cut with "…" so it is at most ``width`` pixels wide at ``size``."""
    text = clean(text)
    if text_width(text, size) <= width:
        return text
    # The longest prefix that fits with "…", found by halving (a hostile 300-character name stays cheap).
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(text[:middle] + "…", size) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + "…"


def draw_text(
    surface: pygame.Surface,
    text: str,
    pos: tuple[int, int],
    size: int = 24,
    color: tuple[int, int, int] = TEXT,
    anchor: str = "topleft",
    width: int | None = None,
) -> pygame.Rect:
    """Draw one line of ``text`` with its ``anchor`` point (a ``pygame.Rect`` attribute) at ``pos``.

    ``width``: cut the text with "…" to fit. Never raises (see :func:`render`).
    """
    if width is not None:
        text = fit(text, size, width)
    image = render(text, size, color)
    rect = image.get_rect(**{anchor: pos})
    surface.blit(image, rect)
    return rect


def wrap(text: str, size: int, width: int) -> list[str]:
    """``text`` broken into lines at most ``width`` pixels wide (long words are cut)."""
    lines: list[str] = []
    line = ""
    for word in clean(text).split(" "):
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = fit(word, size, width)
    if line:
        lines.append(line)
    return lines


def panel(surface: pygame.Surface, rect: pygame.Rect, title: str = "") -> None:
    """A rounded panel, with ``title`` in its top-left corner."""
    pygame.draw.rect(surface, PANEL, rect, border_radius=8)
    pygame.draw.rect(surface, BORDER, rect, 1, border_radius=8)
    if title:
        draw_text(surface, title, (rect.x + 12, rect.y + 10), 24, MUTED)


class Button:
    """A button: click it (or press its ``key``) to call ``on_click``; greyed out when not ``enabled``."""

    def __init__(
        self,
        rect: pygame.Rect | tuple[int, int, int, int],
        label: str,
        on_click: Callable[[], object],
        color: tuple[int, int, int] = ACCENT,
        size: int = 26,
    ) -> None:
        self.rect = pygame.Rect(rect)
        self.label = label
        self.on_click = on_click
        self.color = color
        self.size = size  # the label's font size
        self.enabled = True
        self.visible = True

    def handle(self, event: pygame.event.Event) -> bool:
        """Call ``on_click`` on a left click inside; ``True`` if so."""
        if (
            self.visible
            and self.enabled
            and event.type == pygame.MOUSEBUTTONDOWN
            and event.button == 1
            and self.rect.collidepoint(event.pos)
        ):
            self.on_click()
            return True
        return False

    def draw(self, surface: pygame.Surface) -> None:
        if not self.visible:
            return
        hover = self.enabled and self.rect.collidepoint(pygame.mouse.get_pos())
        fill = self.color if self.enabled else PANEL_LIGHT
        if hover:
            fill = tuple(min(255, c + 30) for c in fill)
        pygame.draw.rect(surface, fill, self.rect, border_radius=6)
        color = BG if self.enabled else MUTED
        draw_text(surface, self.label, self.rect.center, self.size, color, "center", self.rect.width - 12)


class TextInput:
    """A one-line text field: click to focus, type, Enter calls ``on_submit(text)``."""

    def __init__(
        self,
        rect: pygame.Rect | tuple[int, int, int, int],
        placeholder: str,
        max_length: int,
        on_submit: Callable[[str], object] | None = None,
        clear_on_submit: bool = False,
    ) -> None:
        self.rect = pygame.Rect(rect)
        self.placeholder = placeholder
        self.max_length = max_length
        self.on_submit = on_submit
        self.clear_on_submit = clear_on_submit
        self.text = ""
        self.focused = False

    def handle(self, event: pygame.event.Event) -> bool:
        """Focus on click; take typed text, Backspace and Enter while focused."""
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self.focused = self.rect.collidepoint(event.pos)
            return self.focused
        if not self.focused:
            return False
        if event.type == pygame.TEXTINPUT:
            self.text = (self.text + clean(event.text))[: self.max_length]
            return True
        if event.type == pygame.KEYDOWN:
            if event.key == pygame.K_BACKSPACE:
                self.text = self.text[:-1]
                return True
            if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                if self.on_submit is not None and self.text.strip():
                    self.on_submit(self.text.strip())
                    if self.clear_on_submit:
                        self.text = ""
                return True
            if event.key == pygame.K_ESCAPE:
                self.focused = False
                return True
            return True  # keys typed into the field are not shortcuts
        return False

    def draw(self, surface: pygame.Surface) -> None:
        pygame.draw.rect(surface, BG, self.rect, border_radius=6)
        pygame.draw.rect(surface, ACCENT if self.focused else BORDER, self.rect, 2, border_radius=6)
        inner = self.rect.width - 20
        if self.text:
            shown = self.text
            while shown and text_width(shown, 26) > inner:
                shown = shown[1:]  # keep the end in view while typing
            rect = draw_text(surface, shown, (self.rect.x + 10, self.rect.centery), 26, TEXT, "midleft")
        else:
            rect = draw_text(
                surface, self.placeholder, (self.rect.x + 10, self.rect.centery), 26, MUTED, "midleft", inner
            )
            rect.width = 0
        if self.focused and pygame.time.get_ticks() // 500 % 2 == 0:  # a blinking caret
            x = rect.right + 2
            pygame.draw.line(surface, TEXT, (x, self.rect.y + 8), (x, self.rect.bottom - 8), 2)


class ChatBox:
    """The last chat lines in a panel, and a field to type a new one (Enter sends)."""

    def __init__(self, rect: pygame.Rect | tuple[int, int, int, int], on_send: Callable[[str], object]) -> None:
        self.rect = pygame.Rect(rect)
        self.input = TextInput(
            (self.rect.x + 8, self.rect.bottom - 44, self.rect.width - 16, 36),
            "Say something… (Enter sends)",
            200,
            on_send,
            clear_on_submit=True,
        )

    def handle(self, event: pygame.event.Event) -> bool:
        return self.input.handle(event)

    def draw(self, surface: pygame.Surface, lines: Sequence[tuple[str, str, bool]]) -> None:
        """Draw ``lines`` of (name, text, is_notice), the newest at the bottom."""
        panel(surface, self.rect, "Chat")
        width = self.rect.width - 24
        rows: list[tuple[str, tuple[int, int, int]]] = []
        for name, text, notice in lines:
            if notice:
                rows.extend((line, MUTED) for line in wrap(text, 22, width))
            else:
                rows.extend((line, TEXT) for line in wrap(f"{name}: {text}", 22, width))
        room_for = max(0, (self.input.rect.y - self.rect.y - 38) // 20)
        y = self.rect.y + 36
        for line, color in rows[-room_for:] if room_for else []:
            draw_text(surface, line, (self.rect.x + 12, y), 22, color)
            y += 20
        self.input.draw(surface)

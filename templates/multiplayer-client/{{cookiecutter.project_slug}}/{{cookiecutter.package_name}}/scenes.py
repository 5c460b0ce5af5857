"""The screens, and the App that runs the frame loop and switches between them.

Screens: :class:`NameScene` (type a name), :class:`LobbyScene` (rooms, create, join by
code, chat), :class:`RoomScene` (members, ready, start, chat), :class:`GameScene`
(``game.draw``), :class:`LostScene` (reconnecting…, or Retry / Quit). A scene only reads
the model and calls actions: ``app.net``'s send helpers, and :meth:`App.connect`,
:meth:`App.retry`, :meth:`App.move`, :meth:`App.quit`. The bot calls the same ones.

Each frame, :meth:`App.frame`: ``toad.pg.pump()``, then every pygame event (toad's go
to the model, the rest to the scene), the bot, the game's fixed-step inputs, drawing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Protocol

import pygame
import toad
import toad.pg

from . import game, settings, ui
from .model import CONNECTING, FAILED, GAME, LOBBY, NAME, RECONNECTING, ROOM, Member, Model, RoomInfo
from .net import Net

logger = logging.getLogger(__name__)


class Driver(Protocol):
    """What drives the App instead of the keyboard (the bot)."""

    def update(self, now: float) -> None: ...
    def input(self) -> game.Input | None: ...


def valid_name(text: str) -> str | None:
    """``text`` as a player name (stripped, 1..16 printable characters), or ``None``."""
    name = text.strip()
    if not 1 <= len(name) <= settings.MAX_NAME or not name.isprintable():
        return None
    return name


class Scene:
    """A screen: widgets that take events, and a picture of the model."""

    key = "scene"  # names the screenshot: <key>.png

    def __init__(self, app: App) -> None:
        self.app = app
        self.widgets: list[ui.Button | ui.TextInput | ui.ChatBox] = []

    def handle(self, event: pygame.event.Event) -> None:
        for widget in self.widgets:
            if widget.handle(event) and event.type != pygame.MOUSEBUTTONDOWN:
                return  # a click goes on to the others too, so they can drop their focus

    def draw(self, surface: pygame.Surface, now: float) -> None:
        raise NotImplementedError


class NameScene(Scene):
    """Type a name, Enter (or Play) connects; shows "connecting…" meanwhile."""

    key = "name"

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.name = ui.TextInput((250, 300, 300, 44), "Your name", settings.MAX_NAME, self.submit)
        self.name.focused = True
        self.name.text = app.initial_name
        self.play = ui.Button((325, 360, 150, 44), "Play", lambda: self.submit(self.name.text))
        self.widgets = [self.name, self.play]

    def submit(self, text: str) -> None:
        self.app.connect(text)

    def draw(self, surface: pygame.Surface, now: float) -> None:
        w = surface.get_width()
        ui.draw_text(surface, settings.NAME, (w // 2, 170), 64, ui.TEXT, "center", w - 40)
        ui.draw_text(surface, "What should the others call you?", (w // 2, 270), 28, ui.MUTED, "center")
        self.name.draw(surface)
        self.play.enabled = self.app.model.link != CONNECTING and valid_name(self.name.text) is not None
        self.play.draw(surface)
        if self.app.model.link == CONNECTING:
            status = f"connecting to {self.app.url}" + "." * (int(now * 3) % 4)
            ui.draw_text(surface, status, (w // 2, 440), 26, ui.ACCENT, "center", w - 40)
        else:
            ui.draw_text(surface, "Enter to play", (w // 2, 440), 24, ui.MUTED, "center")


class LobbyScene(Scene):
    """The public rooms (click one to join), create a room, join by code, and the lobby chat."""

    key = "lobby"
    ROW = 38
    LIST = pygame.Rect(20, 60, 470, 330)

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.private = False
        self.scroll = 0  # the first room shown (the mouse wheel scrolls the list)
        self.room_name = ui.TextInput((520, 100, 260, 40), "Room name", settings.MAX_ROOM_NAME, self.create)
        self.private_button = ui.Button((520, 150, 125, 38), "Public", self.toggle_private, ui.PANEL_LIGHT)
        self.create_button = ui.Button((655, 150, 125, 38), "Create", lambda: self.create(self.room_name.text))
        self.code = ui.TextInput((520, 270, 150, 40), "Code", 4, self.join_code)
        self.join_button = ui.Button((680, 270, 100, 40), "Join", lambda: self.join_code(self.code.text))
        self.chat = ui.ChatBox((20, 405, 760, 220), app.net.chat)
        self.widgets = [self.room_name, self.private_button, self.create_button, self.code, self.join_button, self.chat]

    def toggle_private(self) -> None:
        self.private = not self.private

    def create(self, name: str) -> None:
        name = name.strip() or f"{self.app.model.my_name}'s room"
        self.app.net.create(name[: settings.MAX_ROOM_NAME], self.private)

    def join_code(self, code: str) -> None:
        if code.strip():
            self.app.net.join_code(code)

    def row_rect(self, index: int) -> pygame.Rect:
        return pygame.Rect(self.LIST.x + 8, self.LIST.y + 40 + index * self.ROW, self.LIST.width - 16, self.ROW - 4)

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            for i, room in enumerate(self.shown_rooms()):
                if self.row_rect(i).collidepoint(event.pos) and room.state == "waiting":
                    self.app.net.join(room.id)
        elif event.type == pygame.MOUSEWHEEL and self.LIST.collidepoint(pygame.mouse.get_pos()):
            self.scroll_by(-event.y)
        super().handle(event)

    def visible_rows(self) -> int:
        return (self.LIST.height - 62) // self.ROW  # below the title, above the "N of M" line

    def scroll_by(self, rows: int) -> None:
        """Scroll the room list by ``rows`` (kept within the list)."""
        self.scroll = max(0, min(self.scroll + rows, len(self.app.model.rooms) - self.visible_rows()))

    def shown_rooms(self) -> list[RoomInfo]:
        """The rooms in view, from :attr:`scroll`."""
        self.scroll_by(0)  # the list may have shrunk since
        return self.app.model.rooms[self.scroll : self.scroll + self.visible_rows()]

    def draw(self, surface: pygame.Surface, now: float) -> None:
        model = self.app.model
        ui.draw_text(surface, f"Lobby — {model.my_name}", (20, 18), 32)
        ui.draw_text(surface, f"{model.online} online", (780, 22), 24, ui.MUTED, "topright")
        ui.panel(surface, self.LIST, "Rooms (click to join)")
        rooms = self.shown_rooms()
        if not rooms:
            ui.draw_text(surface, "No rooms yet: create one →", self.LIST.center, 26, ui.MUTED, "center")
        mouse = pygame.mouse.get_pos()
        for i, room in enumerate(rooms):
            rect = self.row_rect(i)
            joinable = room.state == "waiting" and room.players < room.capacity
            hover = joinable and rect.collidepoint(mouse)
            pygame.draw.rect(surface, ui.BORDER if hover else ui.PANEL_LIGHT, rect, border_radius=5)
            ui.draw_text(surface, room.name, (rect.x + 10, rect.centery), 26, ui.TEXT, "midleft", 250)
            count = f"{room.players}/{room.capacity}"
            ui.draw_text(surface, count, (rect.x + 320, rect.centery), 26, ui.TEXT, "midright")
            state_color = ui.GOOD if room.state == "waiting" else ui.GOLD
            ui.draw_text(surface, room.state, (rect.right - 10, rect.centery), 24, state_color, "midright")
        footer: list[str] = []
        if len(model.rooms) > len(rooms):
            footer.append(f"{self.scroll + 1}–{self.scroll + len(rooms)} of {len(model.rooms)} (wheel scrolls)")
        if model.total_rooms > len(model.rooms):  # the server lists 50 at most
            footer.append(f"{len(model.rooms)} of {model.total_rooms} rooms: others by code")
        if footer:
            pos = (self.LIST.x + 12, self.LIST.bottom - 14)
            ui.draw_text(surface, " · ".join(footer), pos, 20, ui.MUTED, "midleft", self.LIST.width - 24)

        ui.panel(surface, pygame.Rect(505, 60, 290, 150), "")
        ui.draw_text(surface, "Create a room", (520, 70), 24, ui.MUTED)
        self.private_button.label = "Private" if self.private else "Public"
        self.private_button.color = ui.GOLD if self.private else ui.PANEL_LIGHT
        for widget in (self.room_name, self.private_button, self.create_button):
            widget.draw(surface)
        ui.panel(surface, pygame.Rect(505, 230, 290, 160), "")
        ui.draw_text(surface, "Join by code", (520, 240), 24, ui.MUTED)
        self.code.draw(surface)
        self.join_button.draw(surface)
        ui.draw_text(surface, "4 letters, from the room's host", (520, 325), 22, ui.MUTED)
        lines = [(c.name, c.text, c.sender is None) for c in model.chat if c.scope == "lobby"]
        self.chat.draw(surface, lines)


class RoomScene(Scene):
    """The room's members (ready marks, the host's crown), Ready, Start (host), Leave, and the room chat."""

    key = "room"
    LIST = pygame.Rect(20, 70, 470, 320)
    ROW = 32

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.ready_button = ui.Button((520, 80, 260, 46), "Ready", self.toggle_ready, ui.GOOD)
        self.start_button = ui.Button((520, 140, 260, 46), "Start", app.net.start, ui.GOLD)
        self.leave_button = ui.Button((520, 200, 260, 46), "Leave", app.net.leave, ui.BAD)
        self.chat = ui.ChatBox((20, 405, 760, 220), app.net.chat)
        # The host's "kick" on each other member's row (row i kicks whoever is on row i when clicked).
        self.kick_buttons = [
            ui.Button((self.LIST.x + 290, self.row_y(i) - 12, 56, 24), "kick", self._kicker(i), ui.BAD, 22)
            for i in range(self.visible_rows())
        ]
        for button in self.kick_buttons:
            button.visible = False  # draw() shows them to the host, on the other members' rows
        self.widgets = [self.ready_button, self.start_button, self.leave_button, self.chat, *self.kick_buttons]

    def row_y(self, index: int) -> int:
        """The middle of member row ``index``."""
        return self.LIST.y + 54 + index * self.ROW

    def visible_rows(self) -> int:
        return (self.LIST.height - 54) // self.ROW  # a big room's last rows give way to "+N more"

    def shown_members(self) -> list[Member]:
        room = self.app.model.room
        return room.players[: self.visible_rows()] if room else []

    def _kicker(self, index: int) -> Callable[[], object]:
        def kick() -> None:
            members = self.shown_members()
            if index < len(members) and self.app.model.is_host() and members[index].id != self.app.model.me:
                self.app.net.kick(members[index].id)

        return kick

    def toggle_ready(self) -> None:
        model = self.app.model
        me = model.room.member(model.me) if model.room else None
        self.app.net.ready(not (me and me.ready))

    def draw(self, surface: pygame.Surface, now: float) -> None:
        model = self.app.model
        room = model.room
        if room is None:
            ui.draw_text(surface, "Joining…", (400, 200), 32, ui.MUTED, "center")
            return
        ui.draw_text(surface, room.name, (20, 18), 34, ui.TEXT, "topleft", 470)
        if room.private:
            ui.draw_text(surface, f"private — code {room.code}", (780, 22), 28, ui.GOLD, "topright")
        elif room.code:
            ui.draw_text(surface, f"code {room.code}", (780, 22), 24, ui.MUTED, "topright")
        ui.panel(surface, self.LIST, f"Players {len(room.players)}/{room.capacity}")
        members = self.shown_members()
        hosting = model.is_host()  # room.host from the latest `room`: it moves when a host leaves
        for i, button in enumerate(self.kick_buttons):
            button.visible = hosting and i < len(members) and members[i].id != model.me
        for i, member in enumerate(members):
            y = self.row_y(i)
            pygame.draw.circle(surface, model.color_of(member.id), (self.LIST.x + 22, y), 8)
            you = " (you)" if member.id == model.me else ""
            color = ui.TEXT if member.connected else ui.MUTED
            name = ui.fit(member.name, 26, 170 if you else 230) + you
            rect = ui.draw_text(surface, name, (self.LIST.x + 40, y), 26, color, "midleft")
            self.kick_buttons[i].draw(surface)
            if member.id == room.host:
                draw_crown(surface, (rect.right + 16, y))
                ui.draw_text(surface, "host", (rect.right + 30, y), 20, ui.GOLD, "midleft")
            if not member.connected:
                mark, mark_color = "away", ui.MUTED
            elif member.ready:
                mark, mark_color = "ready", ui.GOOD
            else:
                mark, mark_color = "not ready", ui.MUTED
            ui.draw_text(surface, mark, (self.LIST.right - 14, y), 24, mark_color, "midright")
        if len(room.players) > len(members):
            more = f"+{len(room.players) - len(members)} more"
            ui.draw_text(surface, more, (self.LIST.right - 14, self.LIST.bottom - 8), 20, ui.MUTED, "bottomright")

        me = room.member(model.me)
        self.ready_button.label = "Not ready" if me and me.ready else "Ready"
        self.ready_button.enabled = room.state == "waiting"
        self.start_button.visible = model.is_host()
        self.start_button.enabled = model.can_start()
        for button in (self.ready_button, self.start_button, self.leave_button):
            button.draw(surface)
        if not model.is_host():
            ui.draw_text(surface, "The host starts the game.", (650, 165), 22, ui.MUTED, "center")
        elif not model.can_start():
            ui.draw_text(surface, "Everyone must be ready.", (650, 262), 22, ui.MUTED, "midtop")
        if model.result:
            draw_result(surface, model, pygame.Rect(505, 290, 290, 100))
        lines = [(c.name, c.text, c.sender is None) for c in model.chat if c.scope == "room"]
        self.chat.draw(surface, lines)


def draw_crown(surface: pygame.Surface, center: tuple[int, int]) -> None:
    """A small gold crown (the default font has no crown glyph)."""
    x, y = center
    points = [(x - 9, y + 6), (x - 9, y - 5), (x - 4, y), (x, y - 8), (x + 4, y), (x + 9, y - 5), (x + 9, y + 6)]
    pygame.draw.polygon(surface, ui.GOLD, points)


def result_headline(model: Model) -> str:
    """The last game's headline: "Ana won!", or "Draw!" when ``winner`` is null (equal top scores, nobody left)."""
    winner = (model.result or {}).get("winner")
    if winner is None:
        return "Draw!"
    names = {m.id: m.name for m in model.room.players} if model.room else {}
    return f"{ui.fit(str(names.get(winner, winner)), 28, 200)} won!"


def draw_result(surface: pygame.Surface, model: Model, rect: pygame.Rect) -> None:
    """The last game's winner and scores."""
    assert model.result is not None
    ui.panel(surface, rect, "Last game")
    names = {m.id: m.name for m in model.room.players} if model.room else {}
    ui.draw_text(surface, result_headline(model), (rect.x + 12, rect.y + 38), 28, ui.GOLD, "topleft", rect.width - 24)
    scores = sorted(model.result.get("scores", {}).items(), key=lambda kv: -kv[1])
    line = "  ".join(f"{ui.fit(str(names.get(pid, pid)), 22, 90)} {score}" for pid, score in scores)
    ui.draw_text(surface, line, (rect.x + 12, rect.y + 70), 22, ui.TEXT, "topleft", rect.width - 24)


class GameScene(Scene):
    """The game, drawn by ``game.draw``; Esc leaves (back to the lobby)."""

    key = "game"

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            self.app.net.leave()

    def draw(self, surface: pygame.Surface, now: float) -> None:
        game.draw(surface, self.app.model.view(now))
        if self.app.model.state is None:
            ui.draw_text(surface, "Get ready…", (400, 340), 40, ui.TEXT, "center")
        ui.draw_text(surface, "Esc leaves", (792, 632), 20, ui.MUTED, "bottomright")


class LostScene(Scene):
    """The connection is gone: "reconnecting…" while toad brings it back, else Retry / Quit."""

    key = "lost"

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.retry_button = ui.Button((250, 380, 140, 46), "Retry", app.retry)
        self.quit_button = ui.Button((410, 380, 140, 46), "Quit", app.quit, ui.BAD)
        self.widgets = [self.retry_button, self.quit_button]

    def handle(self, event: pygame.event.Event) -> None:
        if self.app.model.link == FAILED:
            super().handle(event)
            if event.type == pygame.KEYDOWN and event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                self.app.retry()

    def draw(self, surface: pygame.Surface, now: float) -> None:
        model = self.app.model
        w = surface.get_width()
        if model.link == RECONNECTING:
            ui.draw_text(surface, "Connection lost", (w // 2, 220), 48, ui.TEXT, "center")
            dots = "." * (int(now * 3) % 4)
            ui.draw_text(surface, f"reconnecting{dots}", (w // 2, 280), 32, ui.ACCENT, "center")
            ui.draw_text(surface, "Your seat is kept for a while.", (w // 2, 330), 24, ui.MUTED, "center")
            return
        ui.draw_text(surface, "Cannot reach the server", (w // 2, 200), 48, ui.TEXT, "center")
        for i, line in enumerate(ui.wrap(model.link_error or "The connection closed.", 24, w - 120)[:4]):
            ui.draw_text(surface, line, (w // 2, 260 + i * 24), 24, ui.MUTED, "center")
        self.retry_button.draw(surface)
        self.quit_button.draw(surface)


class App:
    """The whole client: window, model, connection, scenes, frame loop.

    ``driver`` (the bot) replaces the keyboard for the game's inputs and decides what to click.
    ``screenshot_dir`` saves ``<scene>.png`` once per scene after it has been shown for a second.
    """

    def __init__(
        self,
        url: str = settings.SERVER_URL,
        name: str = "",
        screenshot_dir: str | os.PathLike[str] | None = None,
        open_timeout: float = settings.OPEN_TIMEOUT,
    ) -> None:
        pygame.init()
        pygame.display.set_caption(settings.WINDOW_TITLE)
        self.surface = pygame.display.set_mode(settings.WINDOW_SIZE)
        pygame.key.set_repeat(400, 35)
        self.clock = pygame.time.Clock()
        self.url = url
        self.initial_name = name
        self.model = Model()
        self.net = Net(url, open_timeout)
        self.driver: Driver | None = None
        self.running = True
        self._accumulator = 0.0
        self._last = monotonic()
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir else None
        self._shown: tuple[str, float] = ("", 0.0)  # the scene on screen and since when
        self.screenshots: set[str] = set()
        self.scenes: dict[str, Scene] = {
            scene.key: scene
            for scene in (NameScene(self), LobbyScene(self), RoomScene(self), GameScene(self), LostScene(self))
        }

    # -- actions -------------------------------------------------------------------

    def connect(self, name: str) -> bool:
        """Connect as ``name`` (the name screen's Enter); ``False`` if the name is not valid.

        Returns at once: the opening handshake runs on a helper thread (at most ``open_timeout``
        seconds) while the frames go on showing "connecting…"; :meth:`frame` hears how it went.
        """
        valid = valid_name(name)
        if valid is None:
            self.model.toast(f"A name is 1 to {settings.MAX_NAME} characters.", monotonic())
            return False
        if self.model.link in (CONNECTING, RECONNECTING) or self.net.connected or self.net.opening:
            return False
        self.model.link_connecting()
        self.net.connect(valid)
        return True

    def retry(self) -> None:
        """Connect again after a failure, with the same name (and token: the seat may still be held)."""
        self.connect(self.net.name or self.model.my_name or self.initial_name)

    def move(self, data: game.Input) -> None:
        """Play one tick's input: move my circle at once (prediction) and send it."""
        if not self.model.can_move():
            return
        # Predict only what went out (not while reconnecting), or the circle would run ahead for good.
        if self.net.input(self.model.next_seq, data):
            self.model.predict(data)

    def quit(self) -> None:
        """End the frame loop (the window's close button, the lost screen's Quit)."""
        self.running = False

    # -- the frame loop ------------------------------------------------------------------

    def scene(self) -> Scene:
        """The scene to show: the lost screen whenever the connection is down, else the model's screen."""
        model = self.model
        if model.link in (RECONNECTING, FAILED):
            return self.scenes["lost"]
        if model.link == CONNECTING or model.screen == NAME:
            return self.scenes["name"]
        return self.scenes[{LOBBY: "lobby", ROOM: "room", GAME: "game"}[model.screen]]

    def frame(self) -> bool:
        """Run one frame; ``False`` once the App should stop."""
        now = monotonic()
        dt, self._last = now - self._last, now
        toad.pg.pump()
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.running = False
            elif event.type in toad.pg.TYPES:
                self.on_toad_event(event, now)
            else:
                self.scene().handle(event)
        opened = self.net.poll_open()  # the helper thread's outcome (the OPEN event comes by pump)
        if opened is not None and not opened[0] and self.model.link == CONNECTING:
            self.model.link_failed(opened[1])
        if self.driver is not None:
            self.driver.update(now)
        self.tick_inputs(dt)
        self.draw(now)
        self.clock.tick(settings.FPS)
        return self.running

    #: At most this many inputs in one frame (a slow frame catches up a little, never a burst).
    MAX_CATCH_UP = 3
    #: A frame longer than this (seconds) was a stall (the window dragged, the machine busy): its ticks are dropped.
    STALL = 0.5

    def tick_inputs(self, dt: float) -> None:
        """Send one input per server tick while playing: a fixed step, whatever the frame rate.

        The accumulator only ever gains real time (``dt``), so inputs never go out faster than the
        server's ticks. After a stall the backlog is dropped, not sent at once: the server would only
        queue those inputs (and drop all but the last 10), and the player would see a jump.
        """
        if not self.model.can_move() or dt >= self.STALL:
            self._accumulator = 0.0
            return
        step = 1.0 / self.model.tick_rate
        self._accumulator = min(self._accumulator + dt, self.MAX_CATCH_UP * step)
        while self._accumulator >= step:
            self._accumulator -= step
            data = self.driver.input() if self.driver else game.read_input(pygame.key.get_pressed())
            if data is not None:
                self.move(data)

    def on_toad_event(self, event: pygame.event.Event, now: float) -> None:
        """A toad event: open → hello; message → model; close or a final error → the lost screen."""
        if event.source is not self.net.conn:
            return  # an earlier App's connection (tests make several in one process)
        if event.type == toad.pg.OPEN:
            self.model.link_open()
            self.net.on_open()
        elif event.type == toad.pg.MESSAGE:
            msg = self.net.decode(event.message)
            if msg is not None:
                self.model.apply(msg, now)
        elif event.type == toad.pg.CLOSE:
            if self.net.quitting:
                self.model.link_closed()
            elif self.net.conn.isopen():  # toad is reconnecting (or already has: OPEN follows)
                self.model.link_lost()
            else:
                reason = event.reason or "no reason given"
                self.model.link_failed(f"The server closed the connection ({event.code}: {reason}).")
        elif event.type == toad.pg.ERROR:
            if isinstance(event.error, toad.ConnectionFailed):  # reconnecting gave up
                self.model.link_failed(str(event.error))
            else:
                logger.info("connection error: %s", event.error)

    def draw(self, now: float) -> None:
        surface = self.surface
        surface.fill(ui.BG)
        scene = self.scene()
        scene.draw(surface, now)
        for i, text in enumerate(reversed(self.model.current_toasts(now))):
            draw_toast(surface, text, surface.get_height() - 24 - i * 46)
        pygame.display.flip()
        self._maybe_screenshot(scene.key, now)

    def _maybe_screenshot(self, key: str, now: float) -> None:
        if self._shown[0] != key:
            self._shown = (key, now)
        if self.screenshot_dir is None or key in self.screenshots or now - self._shown[1] < 1.0:
            return
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(self.screenshot_dir / f"{key}.png"))
        self.screenshots.add(key)

    def run(self, seconds: float = 0) -> str:
        """Run frames until the window closes or ``seconds`` pass (0: no limit); returns why it stopped."""
        deadline = monotonic() + seconds if seconds > 0 else math.inf
        while self.frame():
            if monotonic() >= deadline:
                return "seconds"
        return "quit"

    def close(self, leave: bool = False) -> None:
        """Say goodbye: ``leave`` the room first if asked, close with 1000, wait a moment for it to go out.

        Never waits for a connection still opening: that one closes by itself if it opens after all.
        """
        self.net.cancel()
        if self.net.connected:
            if leave and self.model.room is not None:
                self.net.leave()
            self.net.close()
            self.net.conn.wait_closed(2.0)
        toad.pg.detach(self.net.conn)
        pygame.quit()
        ui.forget_fonts()


def draw_toast(surface: pygame.Surface, text: str, bottom: int) -> None:
    """A message from the server (an error), over the scene at the bottom."""
    text = ui.fit(text, 26, surface.get_width() - 80)
    width = ui.text_width(text, 26) + 32
    rect = pygame.Rect(0, 0, width, 38)
    rect.midbottom = (surface.get_width() // 2, bottom)
    pygame.draw.rect(surface, (69, 26, 26), rect, border_radius=8)
    pygame.draw.rect(surface, ui.BAD, rect, 2, border_radius=8)
    ui.draw_text(surface, text, rect.center, 26, ui.TEXT, "center")

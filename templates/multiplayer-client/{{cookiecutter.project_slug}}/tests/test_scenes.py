"""Every screen draws for the model in each state, and clicks and keys call the actions."""

from pathlib import Path

import pygame
import pytest

from {{ cookiecutter.package_name }} import model as m
from {{ cookiecutter.package_name }} import scenes

SETUP = {"world": [800, 600], "speed": 240, "radius": 16, "tick_rate": 20, "colors": {}, "target": 10}
ROOMS = [
    {"id": "r1", "name": "Fun", "players": 2, "capacity": 8, "state": "waiting"},
    {"id": "r2", "name": "A very long room name!!", "players": 8, "capacity": 8, "state": "playing"},
]


def room(host: str = "p1", ready: bool = False, private: bool = False) -> dict:
    players = [
        {"id": "p1", "name": "Ana", "ready": ready, "connected": True},
        {"id": "p2", "name": 'Zoë\'s "Big" \\ 🐸', "ready": True, "connected": False},
    ]
    return {
        "id": "r1",
        "name": "Fun",
        "code": "QWER",
        "private": private,
        "host": host,
        "capacity": 4,
        "state": "waiting",
        "players": players,
    }


def feed(app: scenes.App, *messages: dict) -> None:
    for msg in messages:
        assert app.model.apply(msg, 0.0), msg


def welcomed(app: scenes.App) -> None:
    app.model.link_open()
    welcome = {"type": "welcome", "id": "p1", "name": "Ana", "token": "t", "resumed": False, "tick_rate": 20}
    feed(app, welcome, {"type": "lobby", "rooms": ROOMS, "online": 5})


def click(app: scenes.App, pos: tuple[int, int]) -> None:
    app.scene().handle(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=pos))


def key(app: scenes.App, k: int) -> None:
    app.scene().handle(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def type_text(app: scenes.App, text: str) -> None:
    app.scene().handle(pygame.event.Event(pygame.TEXTINPUT, text=text))


def sent(app: scenes.App) -> list[dict]:
    return app.sent  # type: ignore[attr-defined,no-any-return]


def test_name_screen_types_a_name_and_connects(app: scenes.App) -> None:
    assert app.scene().key == "name"
    app.draw(0.0)
    type_text(app, "\x07ra")  # the control character is dropped
    name_scene = app.scenes["name"]
    assert isinstance(name_scene, scenes.NameScene) and name_scene.name.text == "Anara"
    key(app, pygame.K_RETURN)
    assert app.model.link == m.CONNECTING and app.scene().key == "name"
    app.draw(0.5)  # "connecting…"


def test_a_bad_name_does_not_connect(app: scenes.App) -> None:
    assert not app.connect("   ")
    assert not app.connect("x" * 17)
    assert app.model.link == m.IDLE and app.model.current_toasts(0.0)


def test_lobby_draws_and_clicks_join_create_and_code(app: scenes.App) -> None:
    welcomed(app)
    assert app.scene().key == "lobby"
    app.draw(0.0)
    lobby = app.scenes["lobby"]
    assert isinstance(lobby, scenes.LobbyScene)
    click(app, lobby.row_rect(0).center)
    click(app, lobby.row_rect(1).center)  # playing: not joinable
    click(app, lobby.private_button.rect.center)
    click(app, lobby.room_name.rect.center)
    type_text(app, "Den")
    key(app, pygame.K_RETURN)
    click(app, lobby.code.rect.center)
    type_text(app, "qwer")
    click(app, lobby.join_button.rect.center)
    click(app, lobby.chat.input.rect.center)
    type_text(app, "hi all")
    key(app, pygame.K_RETURN)
    assert sent(app) == [
        {"type": "join", "room": "r1"},
        {"type": "create", "name": "Den", "private": True},
        {"type": "join", "code": "QWER"},
        {"type": "chat", "text": "hi all"},
    ]
    feed(app, {"type": "lobby", "rooms": [], "online": 1})
    feed(app, {"type": "chat", "scope": "lobby", "from": None, "name": "", "text": "Bo joined " * 30})
    app.draw(1.0)


def test_room_draws_for_host_and_guest_and_buttons_act(app: scenes.App) -> None:
    welcomed(app)
    feed(app, {"type": "room", "room": room(private=True)})
    assert app.scene().key == "room"
    app.draw(0.0)
    scene = app.scenes["room"]
    assert isinstance(scene, scenes.RoomScene)
    assert scene.start_button.visible and not scene.start_button.enabled  # not everyone is ready
    click(app, scene.ready_button.rect.center)
    feed(app, {"type": "room", "room": room(ready=True)})
    app.draw(0.0)
    assert scene.ready_button.label == "Not ready" and scene.start_button.enabled  # Bo is away: not counted
    click(app, scene.start_button.rect.center)
    click(app, scene.ready_button.rect.center)
    click(app, scene.leave_button.rect.center)
    assert sent(app) == [
        {"type": "ready", "ready": True},
        {"type": "start"},
        {"type": "ready", "ready": False},
        {"type": "leave"},
    ]
    feed(app, {"type": "room", "room": room(host="p2")})
    app.draw(0.0)
    assert not scene.start_button.visible
    feed(app, {"type": "end", "result": {"winner": "p2", "scores": {"p1": 3, "p2": 10}}})
    app.draw(0.0)


def test_game_draws_before_and_after_the_first_state_and_esc_leaves(app: scenes.App) -> None:
    welcomed(app)
    feed(app, {"type": "room", "room": room()}, {"type": "start", "setup": SETUP})
    assert app.scene().key == "game"
    app.draw(0.0)
    players = {"p1": {"x": 50.0, "y": 60.0, "score": 4, "ack": 0}, "p2": {"x": 700.0, "y": 500.0, "score": 9, "ack": 0}}
    feed(app, {"type": "state", "tick": 7, "state": {"players": players, "coins": [[400, 300]], "time_left": 61.5}})
    app.draw(0.1)
    app.move({"dx": 1, "dy": 0})
    assert sent(app)[-1] == {"type": "input", "seq": 1, "input": {"dx": 1, "dy": 0}}
    assert app.model.own == (62.0, 60.0)
    key(app, pygame.K_ESCAPE)
    assert sent(app)[-1] == {"type": "leave"}


def test_inputs_go_out_at_the_tick_rate_whatever_the_frame_rate(app: scenes.App) -> None:
    welcomed(app)
    feed(app, {"type": "room", "room": room()}, {"type": "start", "setup": SETUP})
    players = {"p1": {"x": 50.0, "y": 60.0, "score": 0, "ack": 0}}
    feed(app, {"type": "state", "tick": 1, "state": {"players": players, "coins": [], "time_left": 90}})

    class Holding:
        def update(self, now: float) -> None:
            pass

        def input(self) -> dict:
            return {"dx": 0, "dy": 1}

    app.driver = Holding()
    for _ in range(60):  # one second at 60 frames/s: 20 ticks
        app.tick_inputs(1 / 60)
    count = len([msg for msg in sent(app) if msg["type"] == "input"])
    assert 19 <= count <= 20  # float rounding may leave the 20th for the next frame
    app.tick_inputs(5.0)  # a stalled frame: a few ticks, not a burst of 100
    assert len([msg for msg in sent(app) if msg["type"] == "input"]) <= count + 3


@pytest.mark.parametrize("link", [m.RECONNECTING, m.FAILED])
def test_lost_screen(app: scenes.App, link: str) -> None:
    welcomed(app)
    if link == m.RECONNECTING:
        app.model.link_lost()
    else:
        app.model.link_failed("nothing is listening at ws://127.0.0.1:9: start the server first " * 3)
    assert app.scene().key == "lost"
    app.draw(0.0)
    scene = app.scenes["lost"]
    assert isinstance(scene, scenes.LostScene)
    click(app, scene.retry_button.rect.center)
    assert app.model.link == (m.CONNECTING if link == m.FAILED else m.RECONNECTING)  # no Retry while toad retries
    if link == m.FAILED:
        app.model.link_failed("again")
        click(app, scene.quit_button.rect.center)
        assert not app.running


def test_toasts_and_screenshots(app: scenes.App, tmp_path: Path) -> None:
    app.screenshot_dir = tmp_path
    welcomed(app)
    feed(app, {"type": "error", "code": "no_such_room", "message": "There is no room with that code.", "about": "join"})
    app.draw(0.0)
    app.draw(0.5)
    assert not list(tmp_path.iterdir())  # not shown for a second yet
    app.draw(1.2)
    app.draw(2.5)
    assert [p.name for p in tmp_path.iterdir()] == ["lobby.png"]

"""Every screen draws for the model in each state, and clicks and keys call the actions."""

from pathlib import Path

import pygame
import pytest

from {{ cookiecutter.package_name }} import bot as b
from {{ cookiecutter.package_name }} import model as m
from {{ cookiecutter.package_name }} import scenes, ui

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
    assert scenes.result_headline(app.model) == 'Zoë\'s "Big" \\ 🐸 won!'
    feed(app, {"type": "end", "result": {"winner": None, "scores": {"p1": 10, "p2": 10}}})
    app.draw(0.0)
    assert scenes.result_headline(app.model) == "Draw!"


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
    app.tick_inputs(0.3)  # a slow frame catches up a few ticks at most
    caught_up = len([msg for msg in sent(app) if msg["type"] == "input"])
    assert count + 1 <= caught_up <= count + scenes.App.MAX_CATCH_UP
    app.tick_inputs(5.0)  # a stall (the window dragged): its 100 ticks are dropped, not sent at once
    app.tick_inputs(1 / 60)
    assert len([msg for msg in sent(app) if msg["type"] == "input"]) == caught_up
    for _ in range(60):  # and then the tick rate again
        app.tick_inputs(1 / 60)
    assert 19 <= len([msg for msg in sent(app) if msg["type"] == "input"]) - caught_up <= 20


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


HOSTILE = ["\u034f", "\u200b", "\u200d", "\u0301", "", "\ud800", "\x00", "W" * 300]


@pytest.mark.parametrize("name", HOSTILE, ids=["cgj", "zwsp", "zwj", "combining", "empty", "surrogate", "nul", "300"])
def test_every_scene_draws_whatever_names_other_players_choose(app: scenes.App, name: str) -> None:
    """A name or room name that pygame cannot draw (zero width...) must not crash anybody's client."""
    assert ui.render(name, 24).get_width() > 0 and ui.text_width(name, 24) > 0
    assert ui.fit(name, 24, 100) == ui.clean(name) or ui.text_width(ui.fit(name, 24, 100), 24) <= 100
    name_scene = app.scenes["name"]
    assert isinstance(name_scene, scenes.NameScene)
    name_scene.name.text = name
    app.draw(0.0)
    app.model.link_open()
    welcome = {"type": "welcome", "id": "p1", "name": name, "token": "t", "resumed": False, "tick_rate": 20}
    rooms = [{"id": "r1", "name": name, "players": 1, "capacity": 8, "state": "waiting"}]
    feed(app, welcome, {"type": "lobby", "rooms": rooms, "online": 2, "total": 1})
    feed(app, {"type": "chat", "scope": "lobby", "from": "p2", "name": name, "text": name})
    feed(app, {"type": "error", "code": "bad_message", "message": name, "about": None})
    assert app.scene().key == "lobby"
    app.draw(0.0)
    members = [
        {"id": "p1", "name": name, "ready": False, "connected": True},
        {"id": "p2", "name": name, "ready": True, "connected": False},
    ]
    info = {"id": "r1", "name": name, "code": "QWER", "private": True, "host": "p1", "capacity": 4}
    feed(app, {"type": "room", "room": {**info, "state": "waiting", "players": members}})
    feed(app, {"type": "chat", "scope": "room", "from": "p2", "name": name, "text": name})
    app.draw(0.0)
    feed(app, {"type": "end", "result": {"winner": "p2", "scores": {"p1": 1, "p2": 2}}})
    app.draw(0.0)
    feed(app, {"type": "end", "result": {"winner": "p9", "scores": {"p9": 1}}})  # an id not in the room
    app.draw(0.0)
    feed(app, {"type": "start", "setup": SETUP})
    players = {pid: {"x": 50.0, "y": 60.0, "score": 1, "ack": 0} for pid in ("p1", "p2", "p9")}
    feed(app, {"type": "state", "tick": 1, "state": {"players": players, "coins": [], "time_left": 9}})
    assert app.scene().key == "game"
    app.draw(0.1)
    app.model.link_failed(name)
    app.draw(0.2)
    assert app.scene().key == "lost"


def test_the_lobby_says_how_many_rooms_it_does_not_list_and_scrolls(app: scenes.App) -> None:
    welcomed(app)
    assert app.model.total_rooms == 2  # no "total" in the message: the list is all there is
    rooms = [{"id": f"r{i}", "name": f"R{i}", "players": 1, "capacity": 8, "state": "waiting"} for i in range(50)]
    feed(app, {"type": "lobby", "rooms": rooms, "online": 400, "total": 132})
    assert (len(app.model.rooms), app.model.total_rooms) == (50, 132)
    lobby = app.scenes["lobby"]
    assert isinstance(lobby, scenes.LobbyScene)
    app.draw(0.0)
    lobby.scroll_by(10)
    click(app, lobby.row_rect(0).center)
    lobby.scroll_by(1000)  # kept within the list
    assert lobby.scroll == 50 - lobby.visible_rows()
    app.draw(0.0)
    feed(app, {"type": "lobby", "rooms": rooms[:3], "online": 3})  # the list shrank: back in range
    app.draw(0.0)
    assert lobby.scroll == 0 and app.model.total_rooms == 3
    assert sent(app) == [{"type": "join", "room": "r10"}]


def test_the_host_kicks_and_the_kicked_player_hears_it(app: scenes.App) -> None:
    welcomed(app)
    feed(app, {"type": "room", "room": room()})
    scene = app.scenes["room"]
    assert isinstance(scene, scenes.RoomScene)
    app.draw(0.0)
    assert [button.visible for button in scene.kick_buttons[:3]] == [False, True, False]  # not me; Bo
    click(app, scene.kick_buttons[1].rect.center)
    click(app, scene.kick_buttons[0].rect.center)  # hidden: nothing
    assert sent(app) == [{"type": "kick", "player": "p2"}]
    feed(app, {"type": "room", "room": room(host="p2")})  # Bo hosts now: no kick buttons for me
    app.draw(0.0)
    assert not any(button.visible for button in scene.kick_buttons)
    click(app, scene.kick_buttons[0].rect.center)
    assert len(sent(app)) == 1
    feed(app, {"type": "left", "reason": "kicked"}, {"type": "lobby", "rooms": ROOMS, "online": 5})
    assert app.scene().key == "lobby" and app.model.kicked_from == {"r1"}
    assert app.model.current_toasts(0.0) == ["You were removed from the room"]
    feed(app, {"type": "error", "code": "kicked", "message": "The host removed you from this room.", "about": "join"})
    assert app.model.current_toasts(0.0)[-1] == "The host removed you from this room."
    app.draw(0.0)


def test_a_bot_that_becomes_host_starts_the_game(app: scenes.App) -> None:
    bot = b.Bot(app, "Ana", room="Fun", players=2)
    welcomed(app)
    bot.update(0.0)
    assert sent(app) == [{"type": "join", "room": "r1"}]
    guest = room(host="p2", ready=True)
    for member in guest["players"]:
        member["connected"] = True
    feed(app, {"type": "room", "room": guest})
    bot.update(1.0)  # hello, and it is ready already: nothing to start, it does not host
    assert sent(app)[1:] == [{"type": "chat", "text": "hello from Ana"}]
    host = dict(guest, host="p1")  # the host's connection dropped: the server hands the room to us
    host["players"] = [dict(guest["players"][0]), dict(guest["players"][1], connected=False)]
    feed(app, {"type": "room", "room": host})
    bot.update(2.0)  # Bo is away: one connected member, fewer than --players 2
    assert sent(app)[-1]["type"] == "chat"
    host["players"][1]["connected"] = True  # Bo is back, ready
    feed(app, {"type": "room", "room": host})
    bot.update(3.0)
    assert sent(app)[-1] == {"type": "start"}


def test_a_kicked_bot_does_not_go_back(app: scenes.App) -> None:
    bot = b.Bot(app, "Ana", room="Fun")
    welcomed(app)
    feed(app, {"type": "room", "room": room(host="p2")})
    feed(app, {"type": "left", "reason": "kicked"}, {"type": "lobby", "rooms": ROOMS, "online": 5})
    bot.update(0.0)
    assert sent(app) == [{"type": "create", "name": "Fun", "private": False}]

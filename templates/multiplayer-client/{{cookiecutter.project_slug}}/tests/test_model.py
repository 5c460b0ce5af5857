"""The model, fed the server's messages as the protocol describes them."""

import math

import pytest

from {{ cookiecutter.package_name }} import model as m

SETUP = {"world": [800, 600], "speed": 240, "radius": 16, "tick_rate": 20, "colors": {"p1": [1, 2, 3]}, "target": 10}


def room(state: str = "waiting", ready: bool = False, host: str = "p1", private: bool = False) -> dict:
    return {
        "id": "r1",
        "name": "Fun",
        "code": "ABCD",
        "private": private,
        "host": host,
        "capacity": 8,
        "state": state,
        "players": [
            {"id": "p1", "name": "Ana", "ready": ready, "connected": True},
            {"id": "p2", "name": "Bo", "ready": True, "connected": True},
        ],
    }


def welcome(resumed: bool = False, **extra: object) -> dict:
    return {"type": "welcome", "id": "p1", "name": "Ana", "token": "tok", "resumed": resumed, "tick_rate": 20, **extra}


def state_msg(tick: int, x: float, y: float, ack: int = 0) -> dict:
    players = {"p1": {"x": x, "y": y, "score": 1, "ack": ack}, "p2": {"x": 10.0, "y": 10.0, "score": 2, "ack": 0}}
    return {"type": "state", "tick": tick, "state": {"players": players, "coins": [[5, 5]], "time_left": 80.0}}


def playing() -> m.Model:
    model = m.Model()
    model.link_open()
    for msg in (welcome(), {"type": "room", "room": room("playing", True)}, {"type": "start", "setup": SETUP}):
        assert model.apply(msg, 0.0)
    model.apply(state_msg(1, 100.0, 100.0), 0.0)
    return model


def test_welcome_then_lobby() -> None:
    model = m.Model()
    model.apply(welcome(), 1.0)
    assert (model.me, model.my_name, model.token, model.screen) == ("p1", "Ana", "tok", m.LOBBY)
    assert not model.lobby_seen
    rooms = [{"id": "r1", "name": "Fun", "players": 2, "capacity": 8, "state": "waiting"}]
    model.apply({"type": "lobby", "rooms": rooms, "online": 3}, 1.0)
    assert model.lobby_seen and model.online == 3
    assert model.rooms == [m.RoomInfo("r1", "Fun", 2, 8, "waiting")]


def test_room_chat_ready_and_host() -> None:
    model = m.Model()
    model.apply(welcome(), 0.0)
    model.apply({"type": "room", "room": room()}, 0.0)
    assert model.screen == m.ROOM and model.room is not None and model.is_host()
    assert not model.can_start()  # Ana is not ready
    model.apply({"type": "room", "room": room(ready=True)}, 0.0)
    assert model.can_start() and not model.can_start(min_players=3)
    model.apply({"type": "chat", "scope": "room", "from": None, "name": "", "text": "Bo joined"}, 0.0)
    model.apply({"type": "chat", "scope": "room", "from": "p2", "name": "Bo", "text": "hi"}, 0.0)
    assert [(c.sender, c.text) for c in model.chat] == [(None, "Bo joined"), ("p2", "hi")]
    assert model.stats.chats == [["room", "", "Bo joined"], ["room", "Bo", "hi"]]
    assert model.stats.rooms_seen == ["r1"]
    model.apply({"type": "room", "room": room(host="p2")}, 0.0)
    assert not model.is_host() and not model.can_start()


def test_error_is_a_toast_for_a_while() -> None:
    model = m.Model()
    model.apply({"type": "error", "code": "room_full", "message": "That room is full.", "about": "join"}, 10.0)
    assert model.current_toasts(11.0) == ["That room is full."]
    assert model.current_toasts(20.0) == []
    assert model.stats.errors == [["room_full", "That room is full."]]


def test_start_then_state_places_me_and_others() -> None:
    model = playing()
    assert model.screen == m.GAME and model.own == (100.0, 100.0) and model.can_move()
    view = model.view(0.0)
    avatars = {a.name: a for a in view.avatars}
    assert avatars["Ana"].me and avatars["Ana"].color == (1, 2, 3) and avatars["Bo"].score == 2
    assert view.coins == [(5.0, 5.0)] and view.time_left == 80.0
    assert model.stats.states == 1 and model.stats.first_tick == 1 and model.stats.scores == {"p1": 1, "p2": 2}


def test_prediction_is_reconciled_with_the_server() -> None:
    model = playing()
    seqs = [model.predict({"dx": 1, "dy": 0}) for _ in range(3)]
    assert seqs == [1, 2, 3] and model.own == (136.0, 100.0)
    # The server applied input 1 exactly as predicted: inputs 2 and 3 are applied again on top.
    model.apply(state_msg(2, 112.0, 100.0, ack=1), 0.05)
    assert model.own == (136.0, 100.0) and [p.seq for p in model.pending] == [2, 3]
    assert model.stats.own_error_max == 0.0
    # The server put me elsewhere (a wall, a rule the client lacks): follow it, and count the error.
    model.apply(state_msg(3, 112.0, 130.0, ack=2), 0.1)
    assert model.own == (124.0, 130.0)
    assert model.stats.own_error_max == pytest.approx(math.hypot(124 - 112, 130 - 100))
    model.apply(state_msg(4, 124.0, 130.0, ack=3), 0.15)
    assert model.pending == [] and model.own == (124.0, 130.0)


def test_end_shows_the_result_in_the_room_and_left_goes_to_the_lobby() -> None:
    model = playing()
    model.apply({"type": "end", "result": {"winner": "p2", "scores": {"p1": 3, "p2": 10}}}, 1.0)
    assert model.screen == m.ROOM and model.result is not None and model.setup is None and not model.can_move()
    assert model.stats.games_ended == 1 and model.stats.scores == {"p1": 3, "p2": 10}
    model.apply({"type": "room", "room": room()}, 1.0)
    assert model.screen == m.ROOM
    model.apply({"type": "left", "reason": "expired"}, 1.0)
    assert model.screen == m.LOBBY and model.room is None and model.current_toasts(1.0)


def test_resumed_welcome_returns_to_the_room_and_counts() -> None:
    model = m.Model()
    model.apply(welcome(resumed=True, room=room("playing")), 0.0)
    assert model.screen == m.ROOM and model.room is not None
    assert (model.stats.welcomes, model.stats.resumed) == (1, 1)
    model.apply(welcome(), 0.0)  # not resumed: a new player, back in the lobby
    assert model.screen == m.LOBBY and model.room is None


def test_link_states_and_lost_count() -> None:
    model = m.Model()
    model.link_connecting()
    model.link_failed("nothing is listening")
    assert model.link == m.FAILED and model.stats.lost == 0  # never connected: nothing was lost
    model.link_open()
    model.link_lost()
    model.link_lost()
    assert model.link == m.RECONNECTING and model.stats.lost == 1
    model.link_failed("gave up")
    assert model.stats.lost == 1 and model.link_error == "gave up"


def test_bad_messages_change_nothing() -> None:
    model = m.Model()
    assert not model.apply({"type": "welcome"}, 0.0)
    assert not model.apply({"type": "no_such_type"}, 0.0)
    assert not model.apply({"type": "room", "room": {"id": "r1"}}, 0.0)
    assert model.screen == m.NAME and model.room is None


def test_tick_hashes_are_canonical_and_capped() -> None:
    model = playing()
    for tick in range(2, 260):
        model.apply(state_msg(tick, 100.0, 100.0), tick / 20)
    assert len(model.stats.ticks) == m.TICKS_KEPT and "259" in model.stats.ticks and "2" not in model.stats.ticks
    assert m.state_hash({"b": 1, "a": [1.5]}) == m.state_hash({"a": [1.5], "b": 1})
    assert model.stats.last_tick == 259

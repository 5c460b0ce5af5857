"""lobby.py: the whole lobby state machine, on plain dicts and a hand-turned clock."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.game import Game
from {{ cookiecutter.package_name }}.lobby import Lobby, Outcome, Player, Send, Ticked

Message = dict[str, Any]


class World:
    """A lobby, a clock, and helpers to talk to it as clients would."""

    def __init__(self, rejoin_window: float = 30, room_capacity: int = 8, hello_timeout: float = 10) -> None:
        tokens = itertools.count(1)
        self.lobby = Lobby(
            tick_rate=20,
            rejoin_window=rejoin_window,
            room_capacity=room_capacity,
            hello_timeout=hello_timeout,
            seed=1,
            new_token=lambda: f"token-{next(tokens)}",
        )
        self.now = 1000.0

    def send(self, sender: Player, /, **message: Any) -> list[Send]:
        return self.outcome(sender, **message).sends

    def outcome(self, sender: Player, /, **message: Any) -> Outcome:
        return self.lobby.receive(sender, json.dumps(message), self.now)

    def hello(self, name: str, token: str | None = None) -> Player:
        player = Player()
        outcome = self.outcome(player, type="hello", name=name, **({"token": token} if token else {}))
        return outcome.player

    def room(self, host: Player, name: str = "arena", **options: Any) -> str:
        [(_, message)] = self.send(host, type="create", name=name, **options)
        return message["room"]["id"]

    def tick(self, dt: float = 0.05) -> list[Send]:
        return self.ticked(dt).sends

    def ticked(self, dt: float = 0.05) -> Ticked:
        self.now += dt
        return self.lobby.tick(self.now, dt)


def to(sends: list[Send], player: Player) -> list[Message]:
    """The messages ``player`` gets, in order."""
    return [message for recipients, message in sends if player in recipients]


def types(sends: list[Send], player: Player) -> list[str]:
    return [message["type"] for message in to(sends, player)]


def error(sends: list[Send], player: Player) -> str:
    [message] = to(sends, player)
    assert message["type"] == "error", message
    return message["code"]


def room_of(sends: list[Send], player: Player) -> Message:
    return [m for m in to(sends, player) if m["type"] == "room"][-1]["room"]


@pytest.fixture
def world() -> World:
    return World()


# -- hello ---------------------------------------------------------------------------------


def test_hello_welcomes_then_shows_the_lobby(world: World) -> None:
    player = Player()
    sends = world.send(player, type="hello", name="Ana")
    welcome, lobby = to(sends, player)
    assert welcome == {
        "type": "welcome",
        "id": "p1",
        "name": "Ana",
        "token": "token-1",
        "resumed": False,
        "tick_rate": 20,
        "room": None,
    }
    assert lobby == {"type": "lobby", "rooms": [], "total": 0, "online": 1}


def test_nothing_but_hello_before_hello_and_only_one_hello(world: World) -> None:
    stranger = Player()
    assert error(world.send(stranger, type="chat", text="hi"), stranger) == "not_now"
    ana = world.hello("Ana")
    assert error(world.send(ana, type="hello", name="Ana"), ana) == "not_now"


def test_an_unknown_token_just_makes_a_new_player(world: World) -> None:
    player = Player()
    sends = world.send(player, type="hello", name="Ana", token="made-up")
    assert types(sends, player) == ["welcome", "lobby"] and to(sends, player)[0]["resumed"] is False


# -- rooms ---------------------------------------------------------------------------------


def test_create_seats_the_creator_as_host_and_the_lobby_hears_at_the_next_tick(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    world.tick()
    sends = world.send(ana, type="create", name="arena", capacity=3)
    room = room_of(sends, ana)
    assert room["host"] == ana.id and room["capacity"] == 3 and room["state"] == "waiting"
    assert room["players"] == [{"id": ana.id, "name": "Ana", "ready": False, "connected": True}]
    assert len(room["code"]) == 4 and room["private"] is False
    assert to(sends, bo) == []  # the lobby list is coalesced: it comes with the tick
    [lobby] = to(world.tick(), bo)
    assert lobby["rooms"] == [{"id": room["id"], "name": "arena", "players": 1, "capacity": 3, "state": "waiting"}]
    assert lobby["online"] == 2
    assert to(world.tick(), bo) == []  # nothing changed: nothing sent


def test_many_changes_in_one_tick_make_one_lobby_message(world: World) -> None:
    watcher = world.hello("Watcher")
    world.tick()
    for name in ("a", "b", "c"):
        world.room(world.hello(name), name)
    assert types(world.tick(), watcher) == ["lobby"]


def test_create_refuses_a_bad_capacity_and_a_second_room(world: World) -> None:
    ana = world.hello("Ana")
    assert error(world.send(ana, type="create", name="x", capacity=1), ana) == "bad_message"
    assert error(world.send(ana, type="create", name="x", capacity=9), ana) == "bad_message"
    world.room(ana)
    assert error(world.send(ana, type="create", name="y"), ana) == "not_now"
    assert error(world.send(ana, type="join", room="r1"), ana) == "not_now"


def test_the_room_capacity_setting_and_the_game_limit_both_cap_rooms() -> None:
    small = World(room_capacity=4)
    ana = small.hello("Ana")
    assert error(small.send(ana, type="create", name="x", capacity=5), ana) == "bad_message"
    assert World(room_capacity=64).lobby.max_capacity == Game.MAX_PLAYERS


def test_join_by_id_or_code_tells_every_member(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = world.room(ana)
    code = world.lobby.rooms[room_id].code
    sends = world.send(bo, type="join", room=room_id)
    assert [p["name"] for p in room_of(sends, ana)["players"]] == ["Ana", "Bo"]
    assert room_of(sends, bo) == room_of(sends, ana)
    notice = [m for m in to(sends, ana) if m["type"] == "chat"][0]
    assert notice == {"type": "chat", "scope": "room", "from": None, "name": "server", "text": "Bo joined"}
    sends = world.send(cy, type="join", code=code.lower())
    assert [p["name"] for p in room_of(sends, bo)["players"]] == ["Ana", "Bo", "Cy"]


def test_join_errors(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    assert error(world.send(ana, type="join", room="r99"), ana) == "no_such_room"
    assert error(world.send(ana, type="join", code="ZZZZ"), ana) == "no_such_room"
    room_id = world.room(ana, capacity=2)
    world.send(bo, type="join", room=room_id)
    assert error(world.send(cy, type="join", room=room_id), cy) == "room_full"
    world.send(bo, type="leave")
    world.send(ana, type="ready", ready=True)
    world.send(ana, type="start")
    assert error(world.send(cy, type="join", room=room_id), cy) == "already_playing"


def test_private_rooms_are_unlisted_and_joined_by_code_only(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana, private=True)
    [lobby] = to(world.tick(), bo)
    assert lobby["rooms"] == []
    assert error(world.send(bo, type="join", room=room_id), bo) == "no_such_room"
    sends = world.send(bo, type="join", code=world.lobby.rooms[room_id].code)
    assert room_of(sends, bo)["private"] is True


def test_room_codes_are_four_letters_and_unique(world: World) -> None:
    codes = {world.lobby.rooms[world.room(world.hello(f"p{i}"))].code for i in range(50)}
    assert len(codes) == 50
    assert all(len(code) == 4 and set(code) <= set("ABCDEFGHJKLMNPQRSTUVWXYZ") for code in codes)


def test_leave_sends_left_then_lobby_and_tells_the_rest(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    sends = world.send(bo, type="leave")
    assert types(sends, bo) == ["left", "lobby"] and to(sends, bo)[0]["reason"] == "left"
    assert [p["name"] for p in room_of(sends, ana)["players"]] == ["Ana"]
    assert error(world.send(bo, type="leave"), bo) == "not_now"


def test_the_host_hands_over_to_the_earliest_connected_member(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.send(cy, type="join", room=room_id)
    world.lobby.disconnect(bo, 1006, world.now)  # Bo is away: his seat is held, but he cannot host
    sends = world.send(ana, type="leave")
    assert room_of(sends, cy)["host"] == cy.id
    assert {"type": "chat", "scope": "room", "from": None, "name": "server", "text": "Cy is the host now"} in to(
        sends, cy
    )


def test_a_dropped_host_hands_over_and_comes_back_as_a_member(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.send(cy, type="join", room=room_id)
    world.lobby.disconnect(bo, 1006, world.now)  # away too: Cy is the earliest connected member
    sends = world.lobby.disconnect(ana, 1006, world.now)
    room = room_of(sends, cy)
    assert room["host"] == cy.id and room["players"][0]["connected"] is False
    assert [m["text"] for m in to(sends, cy) if m["type"] == "chat"] == [
        "Ana lost the connection; their seat is held for 30 s",
        "Cy is the host now",
    ]
    world.send(cy, type="ready", ready=True)
    assert types(world.send(cy, type="start"), cy) == ["room", "start"]  # the room is not blocked
    back = world.outcome(Player(), type="hello", name="Ana", token=ana.token)
    assert back.player is ana and room_of(back.sends, ana)["host"] == cy.id


def test_when_everyone_is_away_the_first_one_back_hosts(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.lobby.disconnect(bo, 1006, world.now)
    world.lobby.disconnect(ana, 1006, world.now)
    assert world.lobby.rooms[room_id].host is ana  # nobody to hand over to
    back = world.outcome(Player(), type="hello", name="Bo", token=bo.token)
    assert room_of(back.sends, bo)["host"] == bo.id
    assert {"type": "chat", "scope": "room", "from": None, "name": "server", "text": "Bo is the host now"} in to(
        back.sends, bo
    )


def test_the_lobby_lists_at_most_50_rooms_waiting_first_and_counts_them_all(world: World) -> None:
    watcher = world.hello("Watcher")
    hosts = [world.hello(f"h{i}") for i in range(60)]
    for i, host in enumerate(hosts):
        world.room(host, f"{i:03d}" + "x" * 21, private=i % 10 == 9)  # six private rooms
    for host in hosts[:5]:  # the five oldest rooms play
        world.send(host, type="ready", ready=True)
        world.send(host, type="start")
    [lobby] = to(world.tick(), watcher)
    assert lobby["total"] == 54 and len(lobby["rooms"]) == 50
    waiting = [f"r{i + 1}" for i in range(5, 60) if i % 10 != 9]
    assert [room["id"] for room in lobby["rooms"]] == (waiting + ["r1", "r2", "r3", "r4", "r5"])[:50]
    assert [room["state"] for room in lobby["rooms"]] == ["waiting"] * 49 + ["playing"]
    for i in range(400):  # a flood of long-named rooms never makes the message too long for a client
        world.room(world.hello(f"f{i}"), "ｗ" * 24)
    assert len(json.dumps(to(world.tick(), watcher)[0], ensure_ascii=False).encode()) < 16384


def test_the_last_one_out_deletes_the_room(world: World) -> None:
    ana, watcher = world.hello("Ana"), world.hello("Watcher")
    room_id = world.room(ana)
    world.send(ana, type="leave")
    assert room_id not in world.lobby.rooms
    [lobby] = to(world.tick(), watcher)
    assert lobby["rooms"] == []


# -- ready, start, play, end -------------------------------------------------------------


def start_game(world: World, *players: Player) -> str:
    room_id = world.room(players[0])
    for player in players[1:]:
        world.send(player, type="join", room=room_id)
    for player in players:
        world.send(player, type="ready", ready=True)
    sends = world.send(players[0], type="start")
    for player in players:
        assert types(sends, player) == ["room", "start"]
    return room_id


def test_start_needs_the_host_and_everyone_ready(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.send(ana, type="ready", ready=True)
    assert error(world.send(bo, type="start"), bo) == "not_host"
    assert error(world.send(ana, type="start"), ana) == "not_ready"
    sends = world.send(bo, type="ready", ready=True)
    assert [p["ready"] for p in room_of(sends, ana)["players"]] == [True, True]
    sends = world.send(ana, type="start")
    assert room_of(sends, bo)["state"] == "playing"
    setup = to(sends, bo)[1]["setup"]
    assert set(setup["colors"]) == {ana.id, bo.id}
    assert error(world.send(ana, type="start"), ana) == "not_now"
    assert error(world.send(bo, type="ready", ready=False), bo) == "not_now"


def test_a_held_seat_does_not_block_the_start(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.lobby.disconnect(bo, 1006, world.now)
    world.send(ana, type="ready", ready=True)
    assert types(world.send(ana, type="start"), ana) == ["room", "start"]


def test_every_tick_sends_one_state_to_the_whole_room(world: World) -> None:
    ana, bo, watcher = world.hello("Ana"), world.hello("Bo"), world.hello("Watcher")
    start_game(world, ana, bo)
    world.tick()
    sends = world.tick()
    assert to(sends, watcher) == []  # the lobby hears nothing of a round's ticks
    states = [(recipients, m) for recipients, m in sends if m["type"] == "state"]
    assert len(states) == 1 and set(states[0][0]) == {ana, bo}
    first = states[0][1]
    assert set(first["state"]["players"]) == {ana.id, bo.id}
    [later] = [m for m in to(world.tick(), ana) if m["type"] == "state"]
    assert later["tick"] == first["tick"] + 1


def test_inputs_are_applied_and_acknowledged(world: World) -> None:
    ana = world.hello("Ana")
    start_game(world, ana)
    assert world.send(ana, type="input", seq=1, input={"dx": 1, "dy": 0}) == []
    [state] = [m for m in to(world.tick(), ana) if m["type"] == "state"]
    assert state["state"]["players"][ana.id]["ack"] == 1


def test_input_errors(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    assert error(world.send(ana, type="input", seq=1, input={"dx": 1, "dy": 0}), ana) == "not_now"
    start_game(world, ana, bo)
    assert error(world.send(ana, type="input", seq=1, input={"dx": 5, "dy": 0}), ana) == "bad_input"
    world.send(ana, type="input", seq=2, input={"dx": 1, "dy": 0})
    assert error(world.send(ana, type="input", seq=2, input={"dx": 1, "dy": 0}), ana) == "bad_message"


def test_the_end_of_a_round_brings_the_room_back_to_waiting(world: World) -> None:
    ana, bo, watcher = world.hello("Ana"), world.hello("Bo"), world.hello("Watcher")
    start_game(world, ana, bo)
    world.tick()
    sends = world.tick(91)  # past the 90 s round
    assert types(sends, ana) == ["state", "end", "room"]
    end = to(sends, ana)[1]
    assert end["result"] == {"winner": None, "scores": {ana.id: 0, bo.id: 0}}  # 0-0: a draw
    room = room_of(sends, bo)
    assert room["state"] == "waiting" and [p["ready"] for p in room["players"]] == [False, False]
    assert [m["rooms"][0]["state"] for m in to(sends, watcher)] == ["waiting"]
    # Inputs still in flight when the round ended are dropped without an error.
    assert world.send(ana, type="input", seq=50, input={"dx": 1, "dy": 0}) == []
    assert types(world.send(ana, type="ready", ready=True), ana) == ["room"]


def test_a_player_who_leaves_mid_round_leaves_the_game_too(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    start_game(world, ana, bo)
    world.send(bo, type="leave")
    [state] = [m for m in to(world.tick(), ana) if m["type"] == "state"]
    assert set(state["state"]["players"]) == {ana.id}


# -- chat ----------------------------------------------------------------------------------


def test_chat_goes_to_the_room_or_to_the_lobby(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    sends = world.send(bo, type="chat", text=" hi room ")
    assert to(sends, ana) == [{"type": "chat", "scope": "room", "from": bo.id, "name": "Bo", "text": "hi room"}]
    assert to(sends, cy) == []
    sends = world.send(cy, type="chat", text="hi lobby")
    assert [m["scope"] for m in to(sends, cy)] == ["lobby"] and to(sends, ana) == []


def test_chat_is_limited_to_five_lines_in_five_seconds(world: World) -> None:
    ana = world.hello("Ana")
    for _ in range(5):
        assert types(world.send(ana, type="chat", text="spam"), ana) == ["chat"]
    assert error(world.send(ana, type="chat", text="spam"), ana) == "too_fast"
    world.now += 5.1
    assert types(world.send(ana, type="chat", text="calm"), ana) == ["chat"]


# -- abuse -----------------------------------------------------------------------------------


def test_twenty_errors_in_ten_seconds_close_the_connection(world: World) -> None:
    bad = world.hello("Bad")
    for _ in range(19):
        assert world.outcome(bad, type="dance").close is None
        world.now += 0.1
    outcome = world.outcome(bad, type="dance")
    assert outcome.close == (1008, "too many bad messages")
    assert error(outcome.sends, bad) == "unknown_type"


def test_errors_spread_out_are_forgiven(world: World) -> None:
    clumsy = world.hello("Clumsy")
    for _ in range(40):
        assert world.outcome(clumsy, type="dance").close is None
        world.now += 1
    assert world.lobby.receive(clumsy, b"binary", world.now).close is None


# -- seats and rejoining ----------------------------------------------------------------------


def test_a_quit_leaves_at_once(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    sends = world.lobby.disconnect(ana, 1000, world.now)
    room = room_of(sends, bo)
    assert room["host"] == bo.id and [p["name"] for p in room["players"]] == ["Bo"]
    assert world.lobby.online == 1 and ana.id not in world.lobby.players


def test_a_quit_from_the_lobby_is_counted_at_the_next_tick(world: World) -> None:
    ana, watcher = world.hello("Ana"), world.hello("Watcher")
    world.tick()
    assert world.lobby.disconnect(ana, 1000, world.now) == []
    [lobby] = to(world.tick(), watcher)
    assert lobby["online"] == 1 and list(world.lobby.players.values()) == [watcher]


def test_a_lost_connection_holds_the_seat_and_a_hello_with_the_token_resumes_it(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    start_game(world, ana, bo)
    world.send(bo, type="input", seq=1, input={"dx": 1, "dy": 0})
    world.tick()
    sends = world.lobby.disconnect(bo, 1006, world.now)
    room = room_of(sends, ana)
    assert room["players"][1] == {"id": bo.id, "name": "Bo", "ready": True, "connected": False}
    assert any(m["type"] == "chat" and "Bo lost the connection" in m["text"] for m in to(sends, ana))
    assert world.lobby.online == 1
    world.lobby.rooms[room["id"]].game.players[bo.id].score = 3  # type: ignore[union-attr]
    world.tick(20)

    newcomer = Player()
    outcome = world.outcome(newcomer, type="hello", name="Someone else", token=bo.token)
    assert outcome.player is bo  # the server rebinds the connection to the held player
    assert types(outcome.sends, bo) == ["welcome", "chat", "room", "start"]
    welcome = to(outcome.sends, bo)[0]
    assert (welcome["id"], welcome["name"], welcome["resumed"]) == (bo.id, "Bo", True)
    assert welcome["room"]["players"][1]["connected"] is True
    assert room_of(outcome.sends, ana)["players"][1]["connected"] is True
    [state] = [m for m in to(world.tick(), bo) if m["type"] == "state"]
    assert state["state"]["players"][bo.id]["score"] == 3
    # A fresh connection may number its inputs afresh.
    assert world.send(bo, type="input", seq=1, input={"dx": 1, "dy": 0}) == []


def test_a_resumed_player_in_the_lobby_gets_the_lobby(world: World) -> None:
    ana = world.hello("Ana")
    world.lobby.disconnect(ana, 1001, world.now)
    outcome = world.outcome(Player(), type="hello", name="Ana", token=ana.token)
    assert outcome.player is ana and types(outcome.sends, ana) == ["welcome", "lobby"]


def test_a_hello_with_the_token_of_a_connected_player_takes_over(world: World) -> None:
    ana = world.hello("Ana")
    outcome = world.outcome(Player(), type="hello", name="Ana", token=ana.token)
    assert outcome.player is ana and to(outcome.sends, ana)[0]["resumed"] is True
    assert world.lobby.online == 1


def test_after_the_window_the_seat_expires_as_if_they_left(world: World) -> None:
    ana, bo, watcher = world.hello("Ana"), world.hello("Bo"), world.hello("Watcher")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.lobby.disconnect(ana, 1006, world.now)
    assert to(world.tick(29), bo) == []
    sends = world.tick(1.5)
    room = room_of(sends, bo)
    assert room["host"] == bo.id and [p["name"] for p in room["players"]] == ["Bo"]
    assert any(m["type"] == "chat" and m["text"] == "Ana's seat expired" for m in to(sends, bo))
    assert to(sends, watcher)[-1]["online"] == 2
    # Ana comes back too late: a new player, told that the old seat is gone.
    again = Player()
    sends = world.send(again, type="hello", name="Ana", token=ana.token)
    assert types(sends, again) == ["welcome", "left", "lobby"]
    assert to(sends, again)[0]["resumed"] is False and to(sends, again)[0]["id"] != ana.id
    assert to(sends, again)[1] == {"type": "left", "reason": "expired"}


def test_an_expired_held_room_is_deleted(world: World) -> None:
    ana = world.hello("Ana")
    room_id = world.room(ana)
    world.lobby.disconnect(ana, 1006, world.now)
    assert room_id in world.lobby.rooms  # held seats count as members
    world.tick(31)
    assert room_id not in world.lobby.rooms and world.lobby.players == {}


def test_a_close_before_hello_or_a_second_close_changes_nothing(world: World) -> None:
    assert world.lobby.disconnect(Player(), 1006, world.now) == []
    ana = world.hello("Ana")
    world.lobby.disconnect(ana, 1006, world.now)
    assert world.lobby.disconnect(ana, 1006, world.now) == []


def test_with_no_rejoin_window_a_lost_connection_leaves_at_once() -> None:
    world = World(rejoin_window=0)
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    sends = world.lobby.disconnect(ana, 1006, world.now)
    assert [p["name"] for p in room_of(sends, bo)["players"]] == ["Bo"] and room_of(sends, bo)["host"] == bo.id
    assert ana.id not in world.lobby.players
    world.send(bo, type="leave")
    assert world.lobby.rooms == {}
    again = Player()
    assert to(world.send(again, type="hello", name="Ana", token=ana.token), again)[0]["resumed"] is False


def test_a_player_whose_seat_is_held_can_still_win(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = start_game(world, ana, bo)
    world.lobby.disconnect(bo, 1006, world.now)
    world.lobby.rooms[room_id].game.players[bo.id].score = 4  # type: ignore[union-attr]
    sends = world.tick(20)
    sends += world.tick(71)
    [end] = [m for m in to(sends, ana) if m["type"] == "end"]
    assert end["result"]["winner"] == bo.id


# -- hello deadline -----------------------------------------------------------------------


def test_a_connection_that_does_not_say_hello_in_time_is_closed(world: World) -> None:
    slow, quick, babbler = (world.lobby.connect(world.now) for _ in range(3))
    world.send(quick, type="hello", name="Quick")
    world.send(babbler, type="chat", text="hi")  # anything but a valid hello does not count
    world.send(babbler, type="hello", name="")
    late = world.lobby.connect(world.now + 5)
    assert world.ticked(9.9).closes == []
    assert world.ticked(0.2).closes == [(slow, (1008, "say hello first")), (babbler, (1008, "say hello first"))]
    assert world.ticked(1).closes == []  # once
    assert world.ticked(4).closes == [(late, (1008, "say hello first"))]
    gone = world.lobby.connect(world.now)
    world.lobby.disconnect(gone, 1006, world.now)  # closed before the deadline: nothing to close
    assert world.ticked(11).closes == [] and world.lobby.online == 1


def test_a_resuming_hello_also_meets_the_deadline(world: World) -> None:
    ana = world.hello("Ana")
    world.lobby.disconnect(ana, 1006, world.now)
    connection = world.lobby.connect(world.now)
    assert world.outcome(connection, type="hello", name="Ana", token=ana.token).player is ana
    assert world.ticked(11).closes == []


# -- kick --------------------------------------------------------------------------------


def test_the_host_kicks_a_member_who_cannot_come_back(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.send(cy, type="join", room=room_id)
    sends = world.send(ana, type="kick", player=bo.id)
    assert types(sends, bo) == ["left", "lobby"] and to(sends, bo)[0] == {"type": "left", "reason": "kicked"}
    for member in (ana, cy):
        assert types(sends, member) == ["chat", "room"]
        assert to(sends, member)[0]["text"] == "Bo was kicked"
        assert [p["name"] for p in room_of(sends, member)["players"]] == ["Ana", "Cy"]
    assert bo.room is None and world.lobby.players[bo.id] is bo  # still online, in the lobby
    assert error(world.send(bo, type="join", room=room_id), bo) == "kicked"
    assert error(world.send(bo, type="join", code=world.lobby.rooms[room_id].code), bo) == "kicked"
    world.send(ana, type="leave")
    world.send(cy, type="leave")
    assert world.lobby.rooms == {}
    room_id = world.room(ana)  # a new room knows nobody kicked
    assert types(world.send(bo, type="join", room=room_id), bo) == ["room", "chat"]


def test_kick_works_while_playing_and_on_a_held_seat(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    room_id = start_game(world, ana, bo, cy)
    sends = world.send(ana, type="kick", player=bo.id)
    assert types(sends, bo) == ["left", "lobby"]
    [state] = [m for m in to(world.tick(), ana) if m["type"] == "state"]
    assert set(state["state"]["players"]) == {ana.id, cy.id}
    world.lobby.disconnect(cy, 1006, world.now)
    sends = world.send(ana, type="kick", player=cy.id)
    assert to(sends, cy) == [] and [p["name"] for p in room_of(sends, ana)["players"]] == ["Ana"]
    back = world.outcome(Player(), type="hello", name="Cy", token=cy.token)
    assert types(back.sends, cy) == ["welcome", "lobby"]  # back, but in the lobby
    assert error(world.send(cy, type="join", room=room_id), cy) == "kicked"


def test_kick_errors(world: World) -> None:
    ana, bo, cy = world.hello("Ana"), world.hello("Bo"), world.hello("Cy")
    assert error(world.send(ana, type="kick", player=bo.id), ana) == "not_now"
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    assert error(world.send(bo, type="kick", player=ana.id), bo) == "not_host"
    assert error(world.send(ana, type="kick", player=ana.id), ana) == "bad_message"
    assert error(world.send(ana, type="kick", player=cy.id), ana) == "bad_message"
    assert error(world.send(ana, type="kick"), ana) == "bad_message"
    assert [p.name for p in world.lobby.rooms[room_id].members] == ["Ana", "Bo"]


# -- a player the lobby forgot -------------------------------------------------------------


def test_a_removed_player_cannot_make_rooms_that_outlive_everyone(world: World) -> None:
    ana, bo = world.hello("Ana"), world.hello("Bo")
    room_id = world.room(ana)
    world.send(bo, type="join", room=room_id)
    world.lobby.disconnect(ana, 1000, world.now)  # quit (say, a stale connection's close): Ana is gone
    assert error(world.send(ana, type="create", name="ghost"), ana) == "not_now"
    assert error(world.send(ana, type="join", room=room_id), ana) == "not_now"
    assert error(world.send(ana, type="chat", text="boo"), ana) == "not_now"
    assert error(world.send(ana, type="hello", name="Ana"), ana) == "not_now"
    world.send(bo, type="leave")
    assert world.lobby.rooms == {}
    world.lobby.disconnect(bo, 1006, world.now)
    world.tick(31)  # Bo's seat expires
    assert world.lobby.rooms == {} and world.lobby.players == {}
    assert error(world.send(bo, type="create", name="ghost"), bo) == "not_now"
    assert world.lobby.rooms == {}
    assert all(room.host in room.members for room in world.lobby.rooms.values())

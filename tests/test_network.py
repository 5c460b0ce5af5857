"""The selector loop on its own, with a stand-in owner."""

from __future__ import annotations

import selectors
import socket
import threading

import pytest
from helpers import frame, wait_until

from toad.network import Channel, Limits, Loop, hold_writes, release_writes
from toad.protocol import SERVER, Event, Protocol, State


class QuietOwner:
    def _on_events(self, channel: Channel, events: list[Event]) -> None:
        pass

    def _turn_done(self) -> None:
        pass

    def _backlogged(self, channel: Channel) -> bool:
        return False


def test_a_wake_is_never_lost_when_threads_wake_the_loop_at_once() -> None:
    loop = Loop(QuietOwner(), Limits())
    loop.start_thread("test-loop")
    try:
        for _ in range(5):

            def hammer() -> None:
                for _ in range(2000):
                    loop.call_next(lambda: None)

            threads = [threading.Thread(target=hammer) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wait_until(lambda: not loop._calls, what="the calls to run")
            # Every wake that set the flag also sent a byte, so the loop clears
            # it; a flag stuck on would swallow every later wake.
            wait_until(lambda: not loop._woken, timeout=2, what="the wake flag to clear")
    finally:
        loop.stop()
        assert loop.stopped.wait(5)


class DrainingOwner(QuietOwner):
    """Backlogged when the loop first asks, drained by the game before it asks again."""

    def __init__(self) -> None:
        self.answers = [True, False]
        self.events: list[Event] = []

    def _on_events(self, channel: Channel, events: list[Event]) -> None:
        self.events.extend(events)

    def _backlogged(self, channel: Channel) -> bool:
        return self.answers.pop(0) if self.answers else False


def test_a_channel_the_game_drains_while_it_is_being_paused_is_read_at_once() -> None:
    # The game only resumes channels it sees paused; the loop marks a channel
    # paused after deciding to. A drain between the two must not leave it
    # paused for good: the loop looks again after marking, and reads.
    owner = DrainingOwner()
    loop = Loop(owner, Limits())
    ours, theirs = socket.socketpair()
    try:
        protocol = Protocol(SERVER)
        protocol.state = State.OPEN  # past the handshake, for this test
        channel = Channel(loop, ours, protocol, "peer")
        loop.add_channel(channel)
        theirs.sendall(frame(0x1, b"hello"))
        channel._on_ready(selectors.EVENT_READ)
        assert not channel.paused
        assert owner.events == ["hello"]
    finally:
        loop.release()
        theirs.close()


def test_held_writes_go_out_together_when_released() -> None:
    loop = Loop(QuietOwner(), Limits())
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    try:
        protocol = Protocol(SERVER)
        protocol.state = State.OPEN  # past the handshake, for this test
        channel = Channel(loop, ours, protocol, "peer")
        loop.add_channel(channel)
        assert hold_writes()
        assert not hold_writes()  # already holding: an inner call changes nothing
        for word in (b"one", b"two", b"three"):
            channel.send(word)
        with pytest.raises(BlockingIOError):
            theirs.recv(100)  # nothing was sent yet
        release_writes()
        expected = frame(0x2, b"one", mask=False) + frame(0x2, b"two", mask=False) + frame(0x2, b"three", mask=False)
        assert theirs.recv(100) == expected
        channel.send(b"four")  # no longer held
        assert theirs.recv(100) == frame(0x2, b"four", mask=False)
    finally:
        loop.release()
        theirs.close()

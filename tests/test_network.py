"""The selector loop on its own, with a stand-in owner."""

from __future__ import annotations

import threading

from helpers import wait_until

from toad.network import Channel, Limits, Loop
from toad.protocol import Event


class QuietOwner:
    def _on_events(self, channel: Channel, events: list[Event]) -> None:
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

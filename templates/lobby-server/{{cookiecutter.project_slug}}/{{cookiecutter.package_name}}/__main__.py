"""``python -m {{ cookiecutter.package_name }}``: run the server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from types import FrameType

import toad

from . import settings
from .server import MAX_CONNECTIONS, GameServer

log = logging.getLogger(__package__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=__package__, description=f"The lobby and game server of {settings.NAME}.")
    parser.add_argument(
        "--host",
        default="localhost",
        help="address to listen on (default: localhost; 0.0.0.0 lets other machines connect)",
    )
    parser.add_argument("--port", type=int, default=settings.PORT, help="port (default: %(default)s; 0: any free one)")
    parser.add_argument("--tick-rate", type=int, default=settings.TICK_RATE, help="ticks per second (%(default)s)")
    parser.add_argument(
        "--rejoin-window",
        type=float,
        default=settings.REJOIN_WINDOW,
        help="seconds a dropped player's seat is held (%(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="connections at once; one more is turned away (%(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if not 1 <= args.tick_rate <= 1000:
        parser.error("--tick-rate must be from 1 to 1000")
    if args.rejoin_window < 0:
        parser.error("--rejoin-window cannot be negative")
    if args.max_connections < 1:
        parser.error("--max-connections must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    game = GameServer(
        args.host,
        args.port,
        tick_rate=args.tick_rate,
        rejoin_window=args.rejoin_window,
        max_connections=args.max_connections,
    )
    try:
        game.start()
    except toad.ToadError as error:  # the port is taken, the host is not ours...
        log.error("cannot start: %s", error)
        return 1
    shown = f"[{args.host}]" if ":" in args.host else args.host or "0.0.0.0"
    log.info("serving on ws://%s:%d — Ctrl-C stops", shown, game.port)

    def stop_soon(signum: int, frame: FrameType | None) -> None:
        game.request_stop()
        signal.signal(signum, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, stop_soon)
    signal.signal(signal.SIGTERM, stop_soon)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: run() still stops the server
        game.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

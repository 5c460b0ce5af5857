"""``python -m`` this package: the game for a player, or ``--bot`` to play by itself.

Exit code: 0 normally; with ``--bot``, 0 when it ran to ``--seconds`` and 1 after an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=__package__, description=f"{settings.NAME}: the game client.")
    parser.add_argument("--url", default=settings.SERVER_URL, help="the server (default: %(default)s)")
    parser.add_argument("--name", default="", help="your name (skips typing it; the bot's default: bot-XXXX)")
    parser.add_argument("--bot", action="store_true", help="let a bot play (headless unless --window)")
    parser.add_argument("--room", default="bots", help="bot: the room to join or create (default: %(default)s)")
    parser.add_argument("--players", type=int, default=2, help="bot as host: start with this many ready (default 2)")
    parser.add_argument("--seconds", type=float, help="quit after this many seconds (bot default 30; 0: never)")
    parser.add_argument("--report", type=Path, help="bot: write a JSON report here at exit")
    parser.add_argument("--screenshot", metavar="DIR", help="save a PNG of each screen once, for the README")
    parser.add_argument("--window", action="store_true", help="bot: show the window")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 30.0 if args.bot else 0.0
    if args.players < 1:
        parser.error("--players must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.bot and not args.window:
        # Before pygame.init(): no window, no sound card needed (a server, CI, an SSH session).
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

    from .bot import Bot, bot_name  # imports pygame: after the environment is set
    from .scenes import App

    if not args.bot:
        app = App(args.url, args.name, args.screenshot)
        if args.name:
            app.connect(args.name)
        try:
            app.run(args.seconds)
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
        return 0

    name = args.name or bot_name()
    app = App(args.url, name, args.screenshot)
    # With --screenshot the bot stays a little over a second on each screen, so each gets its picture.
    bot = Bot(app, name, args.room, args.players, linger=1.3 if args.screenshot else 0.0)
    try:
        reason = app.run(args.seconds)
        if reason != "seconds":
            reason = "error: the window was closed"
    except KeyboardInterrupt:
        reason = "error: interrupted"
    except Exception as exc:  # the report says what went wrong; the traceback goes to stderr
        logging.exception("the bot failed")
        reason = f"error: {exc!r}"
    app.close(leave=True)
    if args.report:
        text = json.dumps(bot.report(reason), indent=2, ensure_ascii=False) + "\n"
        # backslashreplace: a lone surrogate someone put in a chat line must not lose the whole report.
        args.report.write_text(text, encoding="utf-8", errors="backslashreplace")
    return 0 if reason == "seconds" else 1


if __name__ == "__main__":
    sys.exit(main())

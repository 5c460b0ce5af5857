"""Shared setup: pygame without a screen or a sound card, and an App that is not connected."""

import os

# Before pygame is imported anywhere: the tests draw to an off-screen display.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from {{ cookiecutter.package_name }} import scenes  # noqa: E402


@pytest.fixture
def app() -> Iterator[scenes.App]:
    """An App whose sends are recorded in ``app.sent`` instead of going out (it never connects)."""
    application = scenes.App("ws://127.0.0.1:9", "Ana")
    sent: list[dict] = []

    def record(msg: dict) -> bool:
        sent.append(msg)
        return True

    application.net.send = record  # type: ignore[method-assign]
    application.sent = sent  # type: ignore[attr-defined]
    yield application
    application.close()

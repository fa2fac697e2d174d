"""Fixtures: the sandbox on the sample tenant, with the ordinary settings pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import Sandbox, load_world


@pytest.fixture
async def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """The sample tenant; its `env()` set as the process environment (no stray `.env`: a clean cwd)."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "SLACK_APP_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "PURVIEW_BOT_ALLOWED_CHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)
    async with Sandbox(load_world(None)) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb

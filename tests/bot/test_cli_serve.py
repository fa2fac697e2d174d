"""`purview-bot serve` without its Slack credentials: exit 2 and one sentence, before opening anything."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.cli import main


@pytest.fixture(autouse=True)
def logging_levels() -> Iterator[None]:
    """`main` configures logging for the process (azure → ERROR, serve → INFO): undo it for other tests."""
    loggers = [logging.getLogger(), logging.getLogger("azure")]
    saved = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, saved, strict=True):
        logger.setLevel(level)


def test_serve_in_http_mode_needs_token_and_signing_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(str(tmp_path))
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("purview-bot: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set")
    assert len(err.splitlines()) == 1


def test_serve_in_socket_mode_needs_no_signing_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN must be set to serve Slack in Socket Mode" in err
    assert "SLACK_SIGNING_SECRET" not in err

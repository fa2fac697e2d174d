"""The log cannot be flooded or forged from the network: one line per kind of complaint per interval."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from aiohttp.http_exceptions import HttpProcessingError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.server import (
    RateLimitedLog,
    Readiness,
    RepeatFilter,
    limit_library_logs,
    printable,
    running,
    web_application,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def accept_error(logger: logging.Logger) -> None:
    """What asyncio's default exception handler logs when accept() hits the file-descriptor limit."""
    try:
        raise OSError(24, "Too many open files")
    except OSError:
        logger.error(
            "socket.accept() out of system resource\nsocket: <asyncio.TransportSocket fd=6>",
            exc_info=sys.exc_info(),
        )


def test_a_library_complaint_is_one_line_per_interval_saying_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.asyncio-like")
    clock = Clock()
    logger.addFilter(RepeatFilter(("socket.accept() out of system resource",), interval=60, clock=clock))
    caplog.set_level(logging.DEBUG, logger=logger.name)
    for _ in range(500):
        accept_error(logger)
        clock.now += 0.01
    logger.warning("something else")  # untouched
    clock.now += 60
    accept_error(logger)
    lines = [r for r in caplog.records if r.name == logger.name]
    assert [r.getMessage() for r in lines] == [
        "socket.accept() out of system resource (OSError: [Errno 24] Too many open files)",
        "something else",
        "socket.accept() out of system resource (OSError: [Errno 24] Too many open files)"
        " (and 499 more in the last 65 s)",
    ]
    assert not any(r.exc_info for r in lines)
    assert "Traceback" not in caplog.text


def test_the_filters_sit_on_asyncio_and_aiohttp_once() -> None:
    limit_library_logs()
    limit_library_logs()
    for name in ("asyncio", "aiohttp.server"):
        assert sum(isinstance(f, RepeatFilter) for f in logging.getLogger(name).filters) == 1


def test_our_refusals_are_rate_limited_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.refusals")
    clock = Clock()
    limited = RateLimitedLog(logger, interval=60, clock=clock)
    caplog.set_level(logging.DEBUG, logger=logger.name)
    for _ in range(1000):
        limited.warning("bad_signature", "refused %s", "a request")
        limited.warning("too_large", "too large %d", 1)
    clock.now += 61
    limited.warning("bad_signature", "refused %s", "a request")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a request",
        "too large 1",
        "refused a request (and 999 more in the last 61 s)",
    ]


def test_request_text_in_a_log_line_cannot_start_another_line() -> None:
    assert printable("x\nERROR forged\r\u202e\x1b[31m") == "x\\nERROR forged\\r\\u202e\\x1b[31m"
    assert len(printable("a" * 10_000)) == 120


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.aiohttp-like")
    logger.addFilter(RepeatFilter(("Error handling request",), only=(HttpProcessingError, ConnectionError)))
    caplog.set_level(logging.DEBUG, logger=logger.name)
    for _ in range(2):
        try:
            raise KeyError("a bug in a handler")
        except KeyError:
            logger.exception("Error handling request from %s", "127.0.0.1")
    assert [bool(r.exc_info) for r in caplog.records] == [True, True]


async def test_malformed_requests_over_real_http_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """Header lines over aiohttp's limit are a 400 and, each, an "Error handling request" traceback."""
    caplog.set_level(logging.DEBUG)
    app = web_application(Metrics(), Readiness(AsyncWebClient(token="xoxb-test")), None)
    async with running(app, "127.0.0.1", 0) as url:
        host, port = url.removeprefix("http://").split(":")
        for _ in range(20):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 20_000 + b"\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.split(b" ")[1] == b"400", answer[:100]
            writer.close()
    complaints = [r for r in caplog.records if r.getMessage().startswith("Error handling request")]
    assert len(complaints) == 1 and not complaints[0].exc_info
    assert "Traceback" not in caplog.text

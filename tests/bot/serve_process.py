"""`purview-bot serve` (HTTP mode) as a child process against the sandbox and the fake Slack of the test's
loop: signals are real signals, the file-descriptor limit is the process's own, the log is its stderr."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import Sandbox
from tests.slack.fake_slack import FakeSlack

SECRET = "process-signing-secret"
TOKEN = "xoxb-serve-process"
SERVING = re.compile(r"serving Slack on (http://127\.0\.0\.1:\d+)/slack/events")


def serve_env(
    sandbox: Sandbox, slack: FakeSlack, tmp: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Only ordinary settings; nothing inherited that could point elsewhere. Loopback only."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "PURVIEW_", "SLACK_", "SSL_CERT", "REQUESTS_CA", "PORT"))
    }
    return {
        **base,
        **sandbox.env(),
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.url,
        "PURVIEW_BOT_HOST": "127.0.0.1",
        "PORT": "0",
        "PURVIEW_BOT_WATCH_INTERVAL": "0",
        "PURVIEW_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'serve.db'}",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        **(extra or {}),
    }


@dataclass
class ServeProcess:
    proc: asyncio.subprocess.Process
    url: str = ""
    lines: list[str] = field(default_factory=list)
    log_bytes: int = 0
    reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log_bytes += len(line)
            if len(self.lines) < 10_000:
                self.lines.append(line.decode("utf-8", "replace").rstrip())
            self._changed.set()

    async def wait_for_line(self, pattern: str, within: float = 30) -> str:
        async def found() -> str:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                if self.proc.returncode is not None and self.reader is not None and self.reader.done():
                    raise AssertionError(f"serve exited before logging {pattern!r}:\n{self.log()}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.5)

        try:
            return await asyncio.wait_for(found(), within)
        except TimeoutError:
            raise AssertionError(f"no log line {pattern!r} within {within} s:\n{self.log()}") from None

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def exit_code(self, within: float) -> int:
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(f"serve still running after {within} s:\n{self.log()}") from None
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)
        return code

    def log(self, tail: int = 60) -> str:
        return "\n".join(f"  [serve] {line}" for line in self.lines[-tail:])


@contextlib.asynccontextmanager
async def serving(
    env: Mapping[str, str], cwd: Path, *, max_files: int | None = None, ready: re.Pattern[str] = SERVING
) -> AsyncIterator[ServeProcess]:
    """`python -m bot serve` started and ready (its URL read from the log line `ready` matches: listening
    by default, or connected in Socket Mode); killed if still running when the block ends. `max_files`:
    its RLIMIT_NOFILE."""

    def limit_files() -> None:
        if max_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=limit_files,
    )
    serve = ServeProcess(proc)
    serve.reader = asyncio.create_task(serve._read())
    try:
        line = await serve.wait_for_line(ready.pattern, within=60)
        match = ready.search(line)
        assert match is not None
        serve.url = match.group(1)
        yield serve
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if serve.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(serve.reader, 5)

"""What the process-level tests share: a slow fake Slack, the watcher as a child process, and the tally.

The watcher runs as `python -m bot watch` in its own process (so it can be SIGKILLed for real); the
sandbox and the fake Slack run in the test's event loop. Posts are matched to failures by run id, read
from the parent message's `metadata.event_payload.runs`, the contract's exactly-once record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox import Sandbox
from tests.slack.fake_slack import Call, FakeSlack, _response_json

ALERT_CHANNEL = "C0ALERTS"
SWEEP_LINE = re.compile(r"sweep of \S+: (\d+) scans, (\d+) new failures, (\d+) posts")
TOKEN = "xoxb-process-test"

PostHook = Callable[[Call], Awaitable[None]]


class SlowSlack(FakeSlack):
    """The fake Slack with a slow `chat.postMessage` and a hook on each post.

    `on_post` runs after a post is stored but before its answer is sent: a test can kill the watcher in
    the window where Slack has the message and the store has not yet recorded it. (`conversations.history`,
    which the watcher searches after a crash, and ts values that are post times come with `FakeSlack`.)
    """

    def __init__(self, *, post_delay: float = 0.0) -> None:
        super().__init__()
        self.post_delay = post_delay
        self.on_post: PostHook | None = None

    async def __aenter__(self) -> SlowSlack:
        await self.start()
        return self

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method == "chat.postMessage" and self.post_delay > 0:
            await asyncio.sleep(self.post_delay)
        response = await super()._api(request)
        if method == "chat.postMessage" and self.on_post is not None:
            answer = _response_json(response)  # type: ignore[arg-type]
            ts = answer.get("ts") if isinstance(answer, dict) else None
            call = next((c for c in reversed(self.calls) if c.method == method and _ts(c) == ts and ts), None)
            if call is not None:
                await self.on_post(call)
        return response


def _ts(call: Call) -> str | None:
    return call.response.get("ts") if isinstance(call.response, dict) else None


# --- the tally ------------------------------------------------------------------------------------------


def parents(slack: FakeSlack) -> list[Call]:
    """Successful top-level posts: failure (or storm) parents; thread replies carry `thread_ts`."""
    return [c for c in slack.calls_to("chat.postMessage", ok=True) if not c.args.get("thread_ts")]


def runs_in(call: Call, known: Iterable[str]) -> set[str]:
    """The known run ids a parent post names in `metadata.event_payload.runs` (any shape: ids or dicts)."""
    metadata = call.args.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    runs = payload.get("runs") if isinstance(payload, dict) else None
    if runs is None:
        return set()
    text = json.dumps(runs)
    return {run_id for run_id in known if run_id in text}


def post_counts(slack: FakeSlack, known: Iterable[str]) -> Counter[str]:
    """How many parent posts name each known run id (exactly once is 1 for every failure)."""
    ids = list(known)
    counts: Counter[str] = Counter()
    for call in parents(slack):
        counts.update(runs_in(call, ids))
    return counts


def describe(counts: Counter[str], expected: Iterable[str]) -> str:
    wanted = set(expected)
    lost = sorted(wanted - set(counts))
    twice = sorted(r for r, n in counts.items() if n > 1)
    return f"{len(wanted)} failures: lost {len(lost)} {lost[:5]}, posted twice {len(twice)} {twice[:5]}"


# --- the watcher process --------------------------------------------------------------------------------


def watch_env(
    sandbox: Sandbox,
    slack: FakeSlack,
    database_url: str,
    *,
    interval: float = 300,
    deadline: float = 60,
    token: str = TOKEN,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's whole environment: only ordinary settings, nothing inherited that could point elsewhere."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "PURVIEW_", "SLACK_", "SSL_CERT", "REQUESTS_CA"))
    }
    return {
        **base,
        **sandbox.env(),
        "SLACK_BOT_TOKEN": token,
        "SLACK_API_URL": slack.url,
        "PURVIEW_BOT_ALERT_CHANNEL": ALERT_CHANNEL,
        "PURVIEW_BOT_DATABASE_URL": database_url,
        "PURVIEW_BOT_WATCH_INTERVAL": f"{interval:g}",
        "PURVIEW_BOT_DEADLINE": f"{deadline:g}",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        **(extra or {}),
    }


@dataclass
class LogLine:
    at: float  # time.monotonic() when read
    text: str


@dataclass
class WatchProcess:
    """`python -m bot watch [--once]` as a child; its stderr (the log) is read continuously, timestamped."""

    name: str
    proc: asyncio.subprocess.Process
    lines: list[LogLine] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    killed_at: float | None = None

    @classmethod
    async def start(cls, name: str, env: Mapping[str, str], cwd: Path, *, once: bool) -> WatchProcess:
        args = ["-m", "bot", "watch", *(["--once"] if once else [])]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=dict(env),
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        wp = cls(name, proc)
        wp.reader = asyncio.create_task(wp._read())
        return wp

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(LogLine(time.monotonic(), line.decode("utf-8", "replace").rstrip()))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def sweeps(self, after: float = 0.0) -> list[LogLine]:
        """The contract's INFO line, "sweep of ACCOUNT: N scans, M new failures, K posts"."""
        return [ln for ln in self.lines if ln.at >= after and SWEEP_LINE.search(ln.text)]

    def log(self, tail: int = 40) -> str:
        return "\n".join(f"  [{self.name}] {ln.text}" for ln in self.lines[-tail:])

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no lease release, as when a node dies."""
        if self.proc.returncode is None:
            self.killed_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        await self.wait(10)

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109 - a helper owning its deadline
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)
        return code

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s: test teardown never leaves a child behind."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await self.wait(5)
            except TimeoutError:
                await self.kill()
        elif self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reader, 5)


# --- the world changing under the watcher ---------------------------------------------------------------


def withhold_newest_runs(world: dict[str, Any], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Remove the newest run of each "SOURCE/SCAN" from a world dict; returned to `publish_run` later."""
    held: dict[str, dict[str, Any]] = {}
    for account in world["purview"].values():
        for key in keys:
            if key in account["runs"]:
                held[key] = account["runs"][key].pop(0)
    return held


def publish_run(sandbox: Sandbox, key: str, run: dict[str, Any]) -> None:
    """A new run appears, newest first, as when Purview finishes one (the sandbox serves run lists live)."""
    for account in sandbox.world.purview.values():
        if key in account.runs:
            account.runs[key].insert(0, run)
            return
    raise KeyError(key)

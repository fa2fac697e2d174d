"""Work started after Slack's ack: kept referenced while it runs, and finished (or cancelled) on shutdown.

Plain tasks rather than Bolt's lazy listeners: a lazy listener deep-copies the whole request before it
starts, about a millisecond of CPU per command, which under a burst of commands is what delays the acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background work %s failed", task.get_name(), exc_info=error)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def drain(self, grace_seconds: float) -> None:
        """Let running reports finish (a deploy should not eat them); cancel what outlasts the grace."""
        if not self._tasks:
            return
        log.info("waiting up to %.0f s for %d report(s) in progress", grace_seconds, len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

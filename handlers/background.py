"""Work started after Slack's ack: kept referenced while it runs, and finished (or cut short) on shutdown.

Plain tasks rather than Bolt's lazy listeners: a lazy listener deep-copies the whole request before it
starts, about a millisecond of CPU per command, which under a burst of commands is what delays the acks.

A shutdown (`drain`) waits a bounded time for the work in progress, then cancels what is left; work that
left a visible promise behind ("Checking sales-adls…") registered with `on_interrupt` what to say instead,
and that runs after the cancellation, so no report stays "Checking…" forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

INTERRUPT_SECONDS = 4.0  # for all the "interrupted" edits together, after the wait
CANCEL_SECONDS = 1.0  # for cancelled work to unwind

Action = Callable[[], Awaitable[None]]


class Interruption:
    """What to do if the work that registered it is cut short by a shutdown; `cancel()` once it no
    longer applies (the promise was kept)."""

    def __init__(self, action: Action) -> None:
        self._action = action
        self.active = True

    def cancel(self) -> None:
        self.active = False

    async def run(self) -> None:
        if not self.active:
            return
        self.active = False
        try:
            await self._action()
        except Exception:
            log.warning("could not say that a report was interrupted", exc_info=True)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._interruptions: dict[asyncio.Task[Any], list[Interruption]] = {}

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._interruptions.pop(task, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background work %s failed", task.get_name(), exc_info=error)

    def on_interrupt(self, action: Action) -> Interruption:
        """Run `action` if the current background work is cut short by a shutdown (after it was
        cancelled, within INTERRUPT_SECONDS); call `cancel()` on the result once it no longer applies.
        Outside background work (nothing there is cut short) the registration does nothing."""
        interruption = Interruption(action)
        task = asyncio.current_task()
        if task is not None and task in self._tasks:
            self._interruptions.setdefault(task, []).append(interruption)
        return interruption

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def drain(self, grace_seconds: float, *, skip: asyncio.Event | None = None) -> None:
        """Let running reports finish (a deploy should not eat them) for up to `grace_seconds`, or until
        `skip` is set (a second SIGTERM); then cancel what is left and run its interruptions."""
        if not self._tasks:
            return
        log.info("waiting up to %.0f s for %d report(s) in progress", grace_seconds, len(self._tasks))
        await self._wait(grace_seconds, skip)
        pending = set(self._tasks)
        if not pending:
            return
        if skip is not None and skip.is_set():
            log.warning("stopping now: %d report(s) still in progress are cut short", len(pending))
        else:
            log.warning("%d report(s) did not finish within %.0f s: cut short", len(pending), grace_seconds)
        interruptions = [i for task in pending for i in self._interruptions.get(task, [])]
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=CANCEL_SECONDS)
        await self._interrupt([i for i in interruptions if i.active])

    async def _wait(self, seconds: float, skip: asyncio.Event | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        skipped: asyncio.Future[Any] = asyncio.ensure_future(skip.wait()) if skip else loop.create_future()
        try:
            while self._tasks and not skipped.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                waiting: set[asyncio.Future[Any]] = {*self._tasks, skipped}
                await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            skipped.cancel()

    async def _interrupt(self, interruptions: list[Interruption]) -> None:
        if not interruptions:
            return
        log.info("saying that %d report(s) were interrupted", len(interruptions))
        edits = [asyncio.ensure_future(i.run()) for i in interruptions]
        _, late = await asyncio.wait(edits, timeout=INTERRUPT_SECONDS)
        for edit in late:
            edit.cancel()
        if late:
            log.warning(
                "%d report(s) could not be marked interrupted within %.0f s", len(late), INTERRUPT_SECONDS
            )
            await asyncio.wait(late, timeout=CANCEL_SECONDS)

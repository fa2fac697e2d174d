"""Shutdown of the work after the acks: a bounded wait, a second signal that skips it, and every report cut
short told so (its `on_interrupt` action), after it was cancelled."""

from __future__ import annotations

import asyncio

from handlers.background import Background


class Work:
    """A piece of background work that promises something visible, and whether it was told to take it back."""

    def __init__(self, background: Background, *, finishes: bool, keeps_promise: bool = False) -> None:
        self.background = background
        self.finishes = finishes
        self.keeps_promise = keeps_promise
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.interrupted: list[str] = []
        self.cancelled = False

    async def run(self) -> None:
        async def say_interrupted() -> None:
            assert self.cancelled, "the action runs after the work was cancelled"
            self.interrupted.append("interrupted")

        promise = self.background.on_interrupt(say_interrupted)
        if self.keeps_promise:
            promise.cancel()
        self.started.set()
        try:
            if not self.finishes:
                await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_second_signal_skips_the_wait_and_unfinished_work_is_told() -> None:
    background = Background()
    done = Work(background, finishes=True)
    stuck = Work(background, finishes=False)
    kept = Work(background, finishes=False, keeps_promise=True)
    for work, name in ((done, "done"), (stuck, "stuck"), (kept, "kept")):
        background.spawn(work.run(), name)
        await asyncio.wait_for(work.started.wait(), 10)
    hurry = asyncio.Event()
    draining = asyncio.create_task(background.drain(3600, skip=hurry))
    await asyncio.sleep(0)
    assert not draining.done()  # waiting for the work in progress …
    hurry.set()  # … until the second SIGTERM
    await asyncio.wait_for(draining, 10)
    assert stuck.cancelled and stuck.interrupted == ["interrupted"]
    assert kept.cancelled and kept.interrupted == []  # its promise was kept before
    assert done.interrupted == [] and not done.cancelled
    assert background.running == 0


async def test_work_that_finishes_within_the_grace_is_not_interrupted() -> None:
    background = Background()
    work = Work(background, finishes=False)
    background.spawn(work.run(), "work")
    await asyncio.wait_for(work.started.wait(), 10)
    draining = asyncio.create_task(background.drain(3600))
    await asyncio.sleep(0)
    work.release.set()
    await asyncio.wait_for(draining, 10)
    assert work.interrupted == [] and not work.cancelled


async def test_the_grace_elapsing_cuts_work_short_and_a_failing_action_is_only_logged() -> None:
    background = Background()

    async def broken() -> None:
        raise RuntimeError("Slack is down")

    async def stuck() -> None:
        background.on_interrupt(broken)
        await asyncio.Event().wait()

    background.spawn(stuck(), "stuck")
    await asyncio.sleep(0)
    await asyncio.wait_for(background.drain(0.05), 10)
    assert background.running == 0


async def test_outside_background_work_a_registration_does_nothing() -> None:
    background = Background()
    ran: list[bool] = []

    async def action() -> None:
        ran.append(True)

    background.on_interrupt(action).cancel()
    background.on_interrupt(action)
    await background.drain(0)
    assert ran == []

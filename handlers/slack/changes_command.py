"""`/purview-check changes SOURCE [ACCOUNT] [7d]`: who changed what on the source's resources, answered
only to the asker (issue 11).

The answer is a diagnosis like any other (its findings decide which change is the likely trigger), with
the "What changed" window the asker chose; it waits for a diagnosis slot and keeps the runner's deadline.
A service that cannot set the window (a stand-in) answers with the default one, since the last good scan.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from slack_bolt.context.respond.async_respond import AsyncRespond

from checks.diagnose import NameNotFoundError
from checks.model import Report
from handlers.diagnosis import GRACE_SECONDS
from handlers.render.texts import not_found_text
from handlers.render.what_changed import changes_message
from handlers.slack.deps import Deps
from handlers.slack.parse import WhatChanged
from handlers.slack.posting import respond_text


@runtime_checkable
class ChangesService(Protocol):
    async def what_changed(
        self, source: str, *, account: str | None = None, days: int | None = None
    ) -> Report:
        """A full diagnosis whose "What changed" window is `days` long (None: since the last good scan)."""
        ...


async def _report(deps: Deps, source: str, account: str, days: int | None) -> Report:
    service = deps.service
    if not isinstance(service, ChangesService):
        return await deps.runner.run(source, account=account)
    try:
        async with asyncio.timeout(deps.runner.deadline_seconds + GRACE_SECONDS):
            return await service.what_changed(source, account=account, days=days)
    finally:
        deps.runner.slots.give_back()


async def answer_changes(deps: Deps, work: WhatChanged, account: str, respond: AsyncRespond) -> None:
    """Look the source up, diagnose it with the asked window, answer with the "What changed" blocks.

    As a check: the diagnosis slot first, then the name lookup and the diagnosis inside it (the slot is
    given back when the diagnosis ends, before the answer is posted)."""
    try:
        async with deps.runner.slots.turn():
            source = await deps.runner.resolve_source(work.source, account)
            report = await _report(deps, source, account, work.days)
    except NameNotFoundError as error:
        await respond_text(respond, not_found_text(error))
        return
    # a service that cannot set the window answered with the default one: say that one
    message = changes_message(report, work.days if isinstance(deps.service, ChangesService) else None)
    await respond(
        text=message["text"], blocks=message["blocks"], response_type="ephemeral", replace_original=False
    )

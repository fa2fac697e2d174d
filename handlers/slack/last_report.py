"""The last report of each source, kept in the store: a new report starts with what changed since it.

Every report the Slack handlers publish is saved (`remember`); a check that is not a Re-run compares
with the saved one (`changes_since_last`). The store is a convenience here, never a dependency: a store
that fails or hangs is logged and the report goes out without the comparison.
"""

from __future__ import annotations

import asyncio
import logging

from checks.model import Report
from handlers.ports import StoreUnavailable
from handlers.render.changes import Changes, RerunRequest, changes_since, compare
from handlers.slack.deps import Deps

log = logging.getLogger(__name__)

STORE_SECONDS = 5.0  # a store slower than this is skipped (SQLite's busy timeout is longer)


async def changes_for(deps: Deps, report: Report, previous: RerunRequest | None) -> Changes | None:
    """What the report's thread starts with: against the Re-run button's problems when there is one,
    else against the source's last report in the store; None for a first check (or no store)."""
    if previous is not None:
        return compare(previous.previous, report, partial=previous.truncated)
    return await changes_since_last(deps, report)


async def changes_since_last(deps: Deps, report: Report) -> Changes | None:
    """What changed since the last report of the same source (account and source name), if any."""
    if deps.store is None:
        return None
    try:
        async with asyncio.timeout(STORE_SECONDS):
            last = await deps.store.last_report(report.account, report.source.name)
        return changes_since(last, report) if last is not None else None
    except Exception as error:
        log.warning(
            "could not read the last report of %s in %s; posting without what changed",
            report.source.name,
            report.account,
            exc_info=_trace(error),
        )
        return None


async def remember(deps: Deps, report: Report) -> None:
    """Save the report as the source's last one; a failure is logged, never raised."""
    if deps.store is None:
        return
    try:
        async with asyncio.timeout(STORE_SECONDS):
            await deps.store.save_report(report.account, report.source.name, report.to_json())
    except Exception as error:
        log.warning(
            "could not save the report of %s in %s",
            report.source.name,
            report.account,
            exc_info=_trace(error),
        )


def _trace(error: Exception) -> bool:
    """A traceback is for the unexpected: a database that is down says so in one line."""
    return not isinstance(error, StoreUnavailable | TimeoutError)

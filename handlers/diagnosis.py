"""The one way every entry point runs a diagnosis: names resolved, a deadline with a grace, metrics, and
one line that says why it did not finish.

The slash command, mentions, the Re-run button and the scan-failure watcher all go through
`DiagnosisRunner`, so a hung diagnosis ends the same way everywhere and is counted once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from checks.model import Report
from handlers.ports import DiagnosisMetrics, DiagnosisService
from handlers.render.escape import code

log = logging.getLogger(__name__)

# beyond the diagnosis's own deadline (which makes late checks `unknown`): time to assemble the report
GRACE_SECONDS = 15.0


class AccountError(ValueError):
    """The ACCOUNT argument is not one of the configured accounts; the message lists them (escaped)."""


def resolve_account(requested: str | None, accounts: Sequence[str]) -> str:
    """The configured entry for `requested` (its name or ARM id, any case); the default when None."""
    if not accounts:
        raise AccountError("No Purview account is configured (PURVIEW_ACCOUNTS).")
    found = AccountRef.resolve(requested, accounts)
    if found is None:
        names = ", ".join(code(AccountRef(a).name) for a in accounts)
        raise AccountError(f"No Purview account {code(requested or '')} here. The accounts are: {names}.")
    return found.configured


def reason_of(error: BaseException, deadline_seconds: float | None = None) -> str:
    """One line for the user: what broke (the traceback goes to the log)."""
    if isinstance(error, TimeoutError):
        if deadline_seconds is None:
            return "timed out"
        return f"no answer within {deadline_seconds + GRACE_SECONDS:.0f} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class DiagnosisRunner:
    """Diagnoses under `deadline_seconds` + GRACE_SECONDS, counted in `metrics`."""

    def __init__(
        self, service: DiagnosisService, metrics: DiagnosisMetrics, *, deadline_seconds: float
    ) -> None:
        self.service = service
        self._metrics = metrics
        self.deadline_seconds = deadline_seconds

    async def run(
        self, source: str, *, account: str, scan: str | None = None, requester_email: str | None = None
    ) -> Report:
        """The report, counted; raises NameNotFoundError, TimeoutError or whatever broke."""
        try:
            async with asyncio.timeout(self.deadline_seconds + GRACE_SECONDS):
                report = await self.service.diagnose(
                    source, account=account, scan=scan, requester_email=requester_email
                )
        except NameNotFoundError:
            raise
        except Exception:
            self._metrics.diagnosis_failed()
            raise
        self._metrics.diagnosis(report)
        return report

    def reason(self, error: BaseException) -> str:
        """Why a `run` did not give a report, in one line."""
        return reason_of(error, self.deadline_seconds)

    async def resolve_source(self, source: str, account: str, scan: str | None = None) -> str:
        """The source's name as Purview spells it (and the scan, when given, checked to exist), before
        anything is posted in a channel.

        Raises NameNotFoundError with the closest names. When Purview cannot answer, the name is kept as
        typed and the diagnosis itself reports what it could not read.
        """
        try:
            return await self.service.resolve(source, account=account, scan=scan)
        except NameNotFoundError:
            raise
        except Exception as error:
            log.warning("checking the name %s in %s failed: %s", source, AccountRef(account).name, error)
            return source

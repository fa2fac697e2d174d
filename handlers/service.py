"""What the Slack handlers need from the diagnosis side, as a protocol the composition root implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from checks.gateways.api import Json
from checks.model import Report


@dataclass(frozen=True)
class ScanRuns:
    """One scan of a data source with its latest runs, newest first."""

    scan: Json
    runs: list[Json]


class DiagnosisService(Protocol):
    @property
    def accounts(self) -> list[str]:
        """The configured Purview accounts; the first is the default."""
        ...

    async def diagnose(
        self,
        source: str,
        *,
        account: str | None = None,
        scan: str | None = None,
        requester_email: str | None = None,
    ) -> Report:
        """A full report; raises checks.diagnose.NameNotFoundError for names Purview does not have."""
        ...

    async def data_sources(self, account: str | None = None) -> list[Json]: ...

    async def resolve(self, source: str, *, account: str | None = None, scan: str | None = None) -> str:
        """The source's name as Purview spells it, the scan (when given) checked to exist; raises
        NameNotFoundError with the closest names. One GET when the name is right."""
        ...

    async def scan_runs(self, source: str, account: str | None = None) -> list[ScanRuns]:
        """Raises NameNotFoundError for an unknown source."""
        ...

"""The diagnosis side as the Slack handlers see it (`handlers.service.DiagnosisService`), over Azure.

The requester's Slack email is passed to the checks as their Entra user principal name: in most tenants
the UPN equals the mail address (when it does not, the reader-role finding about the requester says it
could not find the user, and nothing else changes).
"""

from __future__ import annotations

import asyncio

from bot.settings import Settings
from checks.diagnose import NameNotFoundError, closest, diagnose, load_source, select_scans
from checks.errors import NotFoundError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.gateways.factory import AzureClients
from checks.model import Report
from checks.registry import CATALOGUE
from handlers.diagnosis import DiagnosisSlots
from handlers.ports import ScanRuns

MAX_RUNS = 5


class AzureDiagnosisService:
    def __init__(self, clients: AzureClients, settings: Settings) -> None:
        self._clients = clients
        self._settings = settings
        # a bound on diagnoses in flight: spares Azure's throttling buckets, and keeps the event loop's
        # queue short so Slack's acks are answered at once even under a burst of commands. Every
        # `DiagnosisRunner` over this service takes its slots *before* starting a diagnosis's deadline
        # (handlers/diagnosis.py); `diagnose` called directly (the CLI) takes one itself.
        self.slots = DiagnosisSlots(settings.max_concurrent_diagnoses)

    @property
    def accounts(self) -> list[str]:
        return self._settings.accounts

    def _account(self, account: str | None) -> str:
        if account:
            return account
        if not self.accounts:
            raise LookupError("no Purview account configured (PURVIEW_ACCOUNTS)")
        return self.accounts[0]

    def _facts(self, account: str | None) -> Facts:
        name = self._account(account)
        return Facts(self._clients.gateways(name), name)

    async def diagnose(
        self,
        source: str,
        *,
        account: str | None = None,
        scan: str | None = None,
        requester_email: str | None = None,
    ) -> Report:
        return await self._diagnose(source, account, scan=scan, requester_upn=requester_email)

    async def what_changed(
        self, source: str, *, account: str | None = None, days: int | None = None
    ) -> Report:
        """A diagnosis whose "What changed" window is `days` long (None: since the last good scan):
        `/purview-check changes` (handlers.slack.changes_command)."""
        return await self._diagnose(source, account, changes_days=days)

    async def _diagnose(
        self,
        source: str,
        account: str | None,
        *,
        scan: str | None = None,
        requester_upn: str | None = None,
        changes_days: int | None = None,
    ) -> Report:
        async with self.slots.turn():  # none taken again when the caller's turn holds one
            return await diagnose(
                self._facts(account),
                source,
                checks=CATALOGUE,
                docs_base=self._settings.docs_url,
                scan_name=scan,
                deadline_s=self._settings.deadline_seconds,
                requester_upn=requester_upn,
                changes_days=changes_days,
            )

    async def resolve(self, source: str, *, account: str | None = None, scan: str | None = None) -> str:
        facts = self._facts(account)
        try:
            name = str((await facts.data_source(source)).get("name") or source)
        except NotFoundError:  # a different case is still the same source to a person typing
            names = [str(ds.get("name", "")) for ds in await facts.data_sources()]
            same = [n for n in names if n.lower() == source.lower()]
            if not same:
                raise NameNotFoundError("data source", source, closest(source, names)) from None
            name = same[0]
        if scan is not None:
            select_scans(await facts.scans(name), scan)
        return name

    async def data_sources(self, account: str | None = None) -> list[Json]:
        """Raises checks.errors.GatewayError when Purview does not answer."""
        return await self._facts(account).data_sources()

    async def scan_runs(self, source: str, account: str | None = None) -> list[ScanRuns]:
        facts = self._facts(account)
        await load_source(facts, source)  # NameNotFoundError with the closest names
        scans = await facts.scans(source)

        async def one(scan: Json) -> ScanRuns:
            runs = await facts.runs(source, str(scan.get("name", "")))
            return ScanRuns(scan=scan, runs=runs[:MAX_RUNS])

        return list(await asyncio.gather(*(one(s) for s in scans)))

"""AzureDiagnosisService over the sandbox: the handlers' view of the diagnosis, and the call observer."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.azure import azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from checks.diagnose import NameNotFoundError
from checks.model import Status
from sandbox import Sandbox


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str | None]] = []

    def observe(self, plane: str, seconds: float, error_code: str | None) -> None:
        self.calls.append((plane, seconds, error_code))


@pytest.fixture
async def observed() -> Observed:
    return Observed()


@pytest.fixture
async def service(sandbox: Sandbox, observed: Observed) -> AsyncIterator[AzureDiagnosisService]:
    settings = Settings()
    async with azure_clients(settings, observer=observed) as clients:
        yield AzureDiagnosisService(clients, settings)


async def test_accounts_are_the_configured_ones(service: AzureDiagnosisService, sandbox: Sandbox) -> None:
    assert service.accounts == sandbox.accounts


async def test_diagnose_reports_and_labels_every_azure_request(
    service: AzureDiagnosisService, observed: Observed
) -> None:
    report = await service.diagnose("sales-adls")
    assert report.status is Status.FAIL
    assert report.account == service.accounts[0]
    assert {"arm", "purview"} <= {plane for plane, _, _ in observed.calls}
    assert all(seconds >= 0 for _, seconds, _ in observed.calls)


async def test_requester_email_is_checked_as_the_entra_upn(service: AzureDiagnosisService) -> None:
    report = await service.diagnose("sales-adls", requester_email="nobody@contoso.com")
    about_requester = [f for f in report.findings if "nobody@contoso.com" in f.title + f.detail]
    assert about_requester, "the requester's email did not reach the reader-role check"


async def test_scan_filter_and_unknown_names(service: AzureDiagnosisService) -> None:
    report = await service.diagnose("sales-adls", scan="weekly")
    assert [s.name for s in report.scans] == ["weekly"]
    with pytest.raises(NameNotFoundError) as raised:
        await service.diagnose("sales-adl")
    assert "sales-adls" in raised.value.suggestions
    with pytest.raises(NameNotFoundError):
        await service.diagnose("sales-adls", scan="nightly")


async def test_data_sources_and_scan_runs(service: AzureDiagnosisService) -> None:
    names = {str(s["name"]) for s in await service.data_sources()}
    assert {"sales-adls", "healthy-blob"} <= names
    runs = await service.scan_runs("sales-adls")
    assert [r.scan["name"] for r in runs] == ["weekly"]
    assert runs[0].runs and runs[0].runs[0]["status"] == "Failed"
    with pytest.raises(NameNotFoundError):
        await service.scan_runs("no-such-source")


async def test_azure_errors_are_observed_with_their_code(
    service: AzureDiagnosisService, observed: Observed, sandbox: Sandbox
) -> None:
    sandbox.add_fault({"path": r"/providers/Microsoft\.PolicyInsights/", "status": 500, "times": 1})
    await service.diagnose("ops-storage", account="contoso-legacy-pv")
    assert any(plane == "arm" and code is not None for plane, _, code in observed.calls), observed.calls


async def test_every_request_of_every_client_is_observed_once(sandbox: Sandbox) -> None:
    """Pipelines and SDK clients alike (Key Vault's SecretClient, azure-mgmt-authorization) report."""
    observed = Observed()
    settings = Settings()
    async with azure_clients(settings, observer=observed) as clients:
        sandbox.clear_requests()  # the credential's probe at start is not a gateway call
        await AzureDiagnosisService(clients, settings).diagnose("finance-sql")
    # Key Vault's unauthenticated challenge request is part of the attempt that follows it
    served = [r for r in sandbox.requests if r.host_area != "token" and r.authorized]
    assert Counter(p for p, _, _ in observed.calls) == Counter(r.host_area for r in served)
    assert {"arm", "purview", "keyvault"} <= {plane for plane, _, _ in observed.calls}


async def test_metrics_object_is_an_observer(sandbox: Sandbox) -> None:
    metrics = Metrics()
    settings = Settings()
    async with azure_clients(settings, observer=metrics) as clients:
        await AzureDiagnosisService(clients, settings).diagnose("healthy-blob")
    assert 'purview_bot_azure_call_seconds_count{plane="purview"}' in metrics.render().decode()


async def test_resolve_costs_one_read_when_the_name_is_right(
    service: AzureDiagnosisService, sandbox: Sandbox
) -> None:
    sandbox.clear_requests()
    assert await service.resolve("sales-adls") == "sales-adls"
    purview = [r.path for r in sandbox.requests if r.host_area == "purview" and r.status != 401]
    assert purview == [p for p in purview if p.endswith("/scan/datasources/sales-adls")] and len(purview) == 1


async def test_resolve_corrects_case_suggests_names_and_checks_the_scan(
    service: AzureDiagnosisService,
) -> None:
    assert await service.resolve("SALES-ADLS", scan="WEEKLY") == "sales-adls"
    with pytest.raises(NameNotFoundError) as unknown:
        await service.resolve("sales-adl")
    assert "sales-adls" in unknown.value.suggestions
    with pytest.raises(NameNotFoundError) as no_scan:
        await service.resolve("sales-adls", scan="weekli")
    assert no_scan.value.what == "scan" and "weekly" in no_scan.value.suggestions

"""The classifier's rules for issue 12's network classes: private DNS, private accounts, busy runtimes."""

from __future__ import annotations

import pytest

from checks import sections as s
from checks.classify import (
    PRIVATE_DNS_RESOLUTION,
    PURVIEW_PUBLIC_ACCESS_DISABLED,
    RUNTIME_SATURATED,
    SHIR_CANNOT_REACH_PURVIEW,
    classify_run,
    classify_text,
)
from checks.model import Finding, Status
from tests.checks import worlds as w


@pytest.mark.parametrize(
    ("text", "section", "cause"),
    [
        (
            "Failed to connect to salesadls.dfs.core.windows.net: The remote name could not be resolved: "
            "'salesadls.dfs.core.windows.net'",
            s.PRIVATE_DNS,
            PRIVATE_DNS_RESOLUTION,
        ),
        (
            "java.net.UnknownHostException: salesadls.blob.core.windows.net",
            s.PRIVATE_DNS,
            PRIVATE_DNS_RESOLUTION,
        ),
        (
            "A connection error: No such host is known. (sales-sql.database.windows.net:1433)",
            s.PRIVATE_DNS,
            PRIVATE_DNS_RESOLUTION,
        ),
        (
            "Not authorized to access this Purview account. This Purview account is behind a private "
            "endpoint. Please access the account from a client in the same virtual network (VNet).",
            s.PURVIEW_PRIVATE,
            PURVIEW_PUBLIC_ACCESS_DISABLED,
        ),
        (
            "The self-hosted integration runtime shir-01 has reached the limit of concurrent jobs; the "
            "activity is queued.",
            s.SCANS_NO_LONGER_RUN,
            RUNTIME_SATURATED,
        ),
        ("Concurrent jobs limit reached on node node-1.", s.SCANS_NO_LONGER_RUN, RUNTIME_SATURATED),
    ],
)
def test_network_texts(text: str, section: str, cause: str) -> None:
    found = classify_text(text)
    assert found is not None and found.section == section and found.cause == cause, found


def test_the_dns_rule_does_not_take_a_key_vault_not_found() -> None:
    found = classify_text("Failed to read secret from key vault main-kv: status 'NotFound'")
    assert found is not None and found.section == s.KEY_VAULT_SECRET


def test_internal_system_error_on_a_self_hosted_scan_is_what_purview_private_corroborates() -> None:
    scan = w.scan("weekly", "AdlsGen2Credential", ir="shir-01")
    scan["properties"]["connectedVia"]["integrationRuntimeType"] = "SelfHosted"
    run = w.scan_run(
        "Failed",
        "2026-11-28T02:00:00Z",
        error_message="Internal system error. Please contact support with correlationId:ab-12",
    )
    found = classify_run(run, scan)
    assert found is not None and found.cause == SHIR_CANNOT_REACH_PURVIEW


def test_new_sections_link_to_their_learn_pages() -> None:
    for section, page in (
        (s.PRIVATE_DNS, "https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns#"),
        (s.PURVIEW_PRIVATE, "https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot#"),
    ):
        finding = Finding(check="private-dns", status=Status.WARN, section=section, title="t")
        assert finding.to_json("https://internal.example/runbook")["docUrl"].startswith(page)

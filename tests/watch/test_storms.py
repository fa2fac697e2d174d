"""Root-cause fingerprints: one fix, one fingerprint; different facts, different fingerprints."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from checks.model import Finding, Report, SourceSummary, Status
from checks.sections import KEY_VAULT_ACCESS, SCANS_NO_LONGER_RUN, SOURCE_ACCESS
from handlers.watch.storms import cause_evidence, cause_of, explaining_finding, fingerprint, group_by_cause

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-finance"
OID = "a364a7de-0aab-448a-b69b-c65d39340d0f"


def kv_finding(scan: str, *, vault: str = VAULT, oid: str = OID, secret: str = "pw") -> Finding:
    evidence: dict[str, Any] = {
        "vault": vault.rsplit("/", 1)[-1],
        "vaultId": vault,
        "scans": [scan],
        "secrets": [secret],
        "model": "accessPolicy",
        "identity": {"objectId": oid, "displayName": "contoso-pv", "kind": "purview-msi"},
        "secretPermissions": ["get"],
        "policyEntries": 1,
    }
    return Finding(
        check="key-vault-access",
        status=Status.FAIL,
        section=KEY_VAULT_ACCESS,
        title="has Get but not List",
        evidence=evidence,
        scan=scan,
    )


def report(*findings: Finding, source: str = "src") -> Report:
    return Report(
        account="contoso-pv",
        source=SourceSummary(name=source, kind="AzureSqlDatabase", resource_id=None, collection=None),
        scans=[],
        findings=list(findings),
        started_at=datetime(2026, 11, 28, tzinfo=UTC),
        elapsed_ms=1,
        docs_base="https://example.test/doc",
    )


def test_the_same_vault_and_identity_share_a_fingerprint_whatever_the_scan_and_secret() -> None:
    a = kv_finding("nightly", secret="a-password")
    b = kv_finding("weekly", secret="b-password", vault=VAULT.upper() + "/")
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a).startswith("key-vault-access:")
    evidence = cause_evidence(a)
    assert "scans" not in evidence and "secrets" not in evidence
    assert evidence["vaultId"] == VAULT.lower() and evidence["identity.objectId"] == OID


def test_another_vault_identity_or_check_is_another_cause() -> None:
    base = fingerprint(kv_finding("nightly"))
    assert fingerprint(kv_finding("nightly", vault=VAULT.replace("kv-finance", "kv-hr"))) != base
    assert fingerprint(kv_finding("nightly", oid="0000")) != base
    other = replace(kv_finding("nightly"), check="key-vault-secret")
    assert fingerprint(other) != base


def test_the_finding_in_the_run_sections_explains_it_before_others() -> None:
    history = Finding(
        check="scan-history",
        status=Status.FAIL,
        section=KEY_VAULT_ACCESS,
        title="Scan failed",
        scan="nightly",
    )
    policy = Finding(
        check="azure-policy",
        status=Status.FAIL,
        section=SCANS_NO_LONGER_RUN,
        title="policy denies",
        evidence={"resourceId": "/x"},
    )
    kv = kv_finding("nightly")
    diagnosis = report(history, policy, kv)
    assert explaining_finding(diagnosis, "nightly", KEY_VAULT_ACCESS) is kv
    assert explaining_finding(diagnosis, "nightly", None) is policy  # first non-history fail
    assert explaining_finding(diagnosis, "nightly", SOURCE_ACCESS) is policy


def test_a_finding_about_another_scan_does_not_explain_this_one() -> None:
    diagnosis = report(kv_finding("weekly"))
    assert explaining_finding(diagnosis, "nightly", KEY_VAULT_ACCESS) is None


def test_an_unexplained_run_or_missing_report_gets_its_own_fingerprint() -> None:
    warn = Finding(
        check="source-access", status=Status.WARN, section=SOURCE_ACCESS, title="maybe", scan="nightly"
    )
    a = cause_of(report(warn), run_key="pv/src/nightly/1", scan="nightly", section=SOURCE_ACCESS)
    b = cause_of(None, run_key="pv/src/nightly/2", scan="nightly", section=None)
    assert a.finding is None and not a.shared
    assert a.fingerprint.startswith("run:") and a.fingerprint != b.fingerprint


def test_grouping_keeps_first_appearance_order() -> None:
    one = cause_of(report(kv_finding("a")), run_key="1", scan="a", section=KEY_VAULT_ACCESS)
    two = cause_of(report(kv_finding("b", oid="x")), run_key="2", scan="b", section=KEY_VAULT_ACCESS)
    three = cause_of(report(kv_finding("c")), run_key="3", scan="c", section=KEY_VAULT_ACCESS)
    groups = group_by_cause([(one, "a"), (two, "b"), (three, "c")])
    assert [items for _, items in groups] == [["a", "c"], ["b"]]

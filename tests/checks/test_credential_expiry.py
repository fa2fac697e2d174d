"""credential-expiry: a scan's service principal whose client secrets expired (or soon expire) in Entra ID."""

from __future__ import annotations

from typing import Any

import pytest

from checks import run_evidence
from checks import sections as s
from checks.catalogue import credential_expiry
from checks.classify import SP_SECRET_EXPIRED, SP_SECRET_INVALID, classify_text
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld

EXPIRED = {"keyId": "k-old", "displayName": "scan-2025", "endDateTime": "2026-11-01T00:00:00Z"}
SOON = {"keyId": "k-soon", "displayName": "scan-soon", "endDateTime": "2026-12-10T00:00:00Z"}
LONG = {"keyId": "k-long", "displayName": "scan-2027", "endDateTime": "2027-11-01T00:00:00Z"}
CERT = {
    "keyId": "c-1",
    "displayName": "CN=scan",
    "type": "AsymmetricX509Cert",
    "endDateTime": "2028-01-01T00:00:00Z",
}


def _world(secrets: list[dict[str, Any]], *, runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`sales-sql`'s scan `nightly` signs in as scan-sp with a client secret kept in kv-sales."""
    world = kv.kv_world(runs={kv.SCAN: runs or []})
    ref = w.kv_secret_ref(kv.SECRET, kv.CONNECTION)
    w.pv(world)["credentials"] = [
        w.credential(
            kv.CREDENTIAL,
            "ServicePrincipal",
            {"servicePrincipalId": w.SP_APP_ID, "tenantId": w.TENANT, "servicePrincipalKey": ref},
        )
    ]
    w.pv(world)["scans"][kv.SOURCE] = [
        w.scan(kv.SCAN, kv.SECRET_SCAN_KIND, credential=kv.CREDENTIAL, credential_type="ServicePrincipal")
    ]
    sp = next(p for p in world["principals"] if p["id"] == w.SP_OID)
    sp["passwordCredentials"] = secrets
    sp["keyCredentials"] = [CERT]
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await credential_expiry.run(await fake.target(kv.SOURCE))


async def test_every_secret_expired_fails_with_a_fix_that_never_prints_the_secret() -> None:
    [f] = await _run(_world([EXPIRED]))
    assert f.status is Status.FAIL and f.section == s.SP_CREDENTIAL and f.scan == kv.SCAN
    assert "every client secret has expired" in f.title and w.SP_APP_ID in f.title
    assert "scan-2025" in f.detail and "2026-11-01 00:00 UTC" in f.detail and "AADSTS7000222" in f.detail
    assert f.evidence[run_evidence.CAUSE_SINCE] == "2026-11-01T00:00:00Z"
    assert f.evidence["certificates"][0]["keyId"] == "c-1"
    command = f.fix[1]
    assert "never prints the new value" in f.fix[0]
    assert f"APP_ID={w.SP_APP_ID}" in command and f"--vault-name {kv.VAULT}" in command
    assert f"--name {kv.SECRET}" in command and '--value "$NEW_SECRET"' in command
    assert "--query password -o tsv) &&\n" in command  # a failed reset writes nothing
    assert command.rstrip().endswith("--query attributes")
    assert kv.CREDENTIAL in f.fix[2] and "https://web.purview.azure.com" in f.fix[2]
    assert not any(line.lstrip().startswith("#") for step in f.fix for line in step.splitlines())


async def test_a_success_after_the_expiry_turns_the_fail_into_a_warn() -> None:
    runs = [w.scan_run("Succeeded", "2026-11-20T00:00:00Z")]
    world = _world([EXPIRED], runs=runs)
    [f] = await _run(world)
    [judged] = run_evidence.overrule([f], {kv.SCAN: runs})
    assert judged.status is Status.WARN and "Not confirmed" in judged.detail


async def test_expiring_within_30_days_warns_and_names_the_longer_one() -> None:
    [f] = await _run(_world([SOON, LONG]))
    assert f.status is Status.WARN and "expires in 11 days" in f.title
    assert "scan-soon" in f.detail and "scan-2027" in f.detail and "cannot tell which secret" in f.detail


async def test_valid_for_long_passes_and_mentions_expired_leftovers() -> None:
    [f] = await _run(_world([EXPIRED, LONG]))
    assert f.status is Status.PASS and "Expired ones: scan-2025" in f.detail


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("AADSTS7000222: The provided client secret keys for app 'x' are expired.", "AADSTS7000222"),
        ("AADSTS7000215: Invalid client secret provided.", "AADSTS7000215"),
    ],
)
async def test_the_runs_refusal_fails_even_with_a_valid_secret(text: str, code: str) -> None:
    runs = [w.scan_run("Failed", "2026-11-27T00:00:00Z", error_message=text)]
    [f] = await _run(_world([EXPIRED, LONG], runs=runs))
    assert f.status is Status.FAIL and code in f.title
    assert f.evidence["newestRun"]["code"] == code


async def test_no_client_secret_warns() -> None:
    [f] = await _run(_world([]))
    assert f.status is Status.WARN and "no client secret" in f.title


async def test_graph_refused_is_unknown_naming_application_read_all() -> None:
    fake = FakeWorld(_world([EXPIRED]))
    fake.fail["graph.application"] = GatewayError(
        "read app registration in Microsoft Graph",
        status=403,
        code="Authorization_RequestDenied",
        permission="Microsoft Graph Application.Read.All (application permission)",
    )
    [f] = await _run(fake.world, fake)
    assert f.status is Status.UNKNOWN and "Application.Read.All" in f.detail


async def test_an_app_registered_in_another_tenant_is_unknown() -> None:
    world = _world([EXPIRED])
    next(p for p in world["principals"] if p["id"] == w.SP_OID)["servicePrincipalType"] = "Legacy"
    [f] = await _run(world)
    assert f.status is Status.UNKNOWN and "no app registration" in f.detail


async def test_msi_scans_are_skipped_and_graph_is_not_asked() -> None:
    fake = FakeWorld(w.sql_world())
    [f] = await credential_expiry.run(await fake.target("sales-sql"))
    assert f.status is Status.SKIPPED
    assert not [c for c in fake.calls if c.startswith("graph.")]


async def test_one_graph_read_per_app_however_many_scans() -> None:
    world = _world([LONG])
    second = w.scan(
        "weekly", kv.SECRET_SCAN_KIND, credential=kv.CREDENTIAL, credential_type="ServicePrincipal"
    )
    w.pv(world)["scans"][kv.SOURCE].append(second)
    fake = FakeWorld(world)
    found = await _run(world, fake)
    assert [f.status for f in found] == [Status.PASS, Status.PASS]
    assert fake.calls[f"graph.application:{w.SP_APP_ID}"] == 1


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("AADSTS7000222: The provided client secret keys for app 'abc' are expired.", SP_SECRET_EXPIRED),
        ("Failed to get token: AADSTS7000215: Invalid client secret provided.", SP_SECRET_INVALID),
    ],
)
def test_classifier_sends_entra_secret_errors_to_this_section(text: str, cause: str) -> None:
    found = classify_text(text)
    assert found is not None and found.section == s.SP_CREDENTIAL and found.cause == cause


async def test_a_secret_whose_end_the_bot_cannot_read_is_never_counted_as_expired() -> None:
    # reviewer r12: a missing or unreadable endDateTime means "no end the bot knows", never "expired"
    odd = {"keyId": "k-odd", "displayName": "scan-odd", "endDateTime": "not-a-date"}
    [f] = await _run(_world([EXPIRED, odd]))
    assert f.status is Status.PASS and "scan-odd (no end date)" in f.detail


async def test_a_valid_certificate_does_not_rescue_expired_client_secrets() -> None:
    # Purview's service-principal credential holds a client secret (servicePrincipalKey), never a certificate
    [f] = await _run(
        _world([EXPIRED, {**EXPIRED, "keyId": "k-older", "endDateTime": "2026-01-01T00:00:00Z"}])
    )
    assert f.status is Status.FAIL and f.evidence["certificates"][0]["endDateTime"] == "2028-01-01T00:00:00Z"
    assert f.evidence[run_evidence.CAUSE_SINCE] == "2026-11-01T00:00:00Z"  # the newest expiry

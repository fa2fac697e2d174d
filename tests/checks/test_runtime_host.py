"""runtime-host: self-hosted runtime machine problems told by the scan's newest run error, with the fix."""

from __future__ import annotations

from typing import Any

import pytest

from checks import classify
from checks import sections as s
from checks.catalogue import runtime_host, scan_history
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld

SHIR = "shir-onprem"
JRE = (
    "Failure happened on 'Source' side. ErrorCode=UserErrorJreNotFound,'Type=Microsoft.DataTransfer.Common."
    "Shared.HybridDeliveryException,Message=Java Runtime Environment cannot be found on the Self-hosted "
    "Integration Runtime machine. It is required for parsing or writing to Parquet/ORC files.'"
)
JVM = "An error occurred when invoking java, message: java.lang.UnsatisfiedLinkError: could not load jvm.dll"
FIPS = "This implementation is not part of the Windows Platform FIPS validated cryptographic algorithms."
TLS = (
    "The underlying connection was closed: Could not establish trust relationship for the SSL/TLS secure "
    "channel. The remote certificate is invalid according to the validation procedure."
)
NODE = "The self-hosted integration runtime node 'VM-SHIR-01' has expired. Please register the node again."
RELAY = (
    "Failed to connect to 'wu2-relay.servicebus.windows.net' on port 443: an attempt was made to access a "
    "socket in a way forbidden by its access permissions."
)
OLD = "Scanning Parquet files needs self-hosted integration runtime version 5.40 or later."


def _world(error: str | None, *, version: str | None = "5.31.8600.1") -> dict[str, Any]:
    world = w.adls_world()
    part = w.pv(world)
    scan = w.scan("weekly", "AdlsGen2Credential", credential="key", credential_type="AccountKey", ir=SHIR)
    scan["properties"]["connectedVia"]["integrationRuntimeType"] = "SelfHosted"
    part["scans"]["sales-adls"] = [scan]
    status = "Failed" if error else "Succeeded"
    part["runs"]["sales-adls/weekly"] = [w.scan_run(status, "2026-11-27T00:00:00Z", error_message=error)]
    part["integrationRuntimes"].append(w.integration_runtime(SHIR, "SelfHosted"))
    if version:
        part["integrationRuntimeStatus"][SHIR] = {
            "name": SHIR,
            "properties": {"type": "SelfHosted", "state": "Online", "typeProperties": {"version": version}},
        }
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await runtime_host.run(await fake.target("sales-adls"))


@pytest.mark.parametrize(
    ("text", "cause", "status", "fix_word"),
    [
        (JRE, runtime_host.JRE_MISSING, Status.FAIL, "Microsoft.OpenJDK.17"),
        (JVM, runtime_host.JRE_MISSING, Status.FAIL, "JAVA_HOME"),
        (FIPS, runtime_host.FIPS_MODE, Status.FAIL, "FipsAlgorithmPolicy"),
        (TLS, runtime_host.TLS_TRUST, Status.WARN, "Import-Certificate"),
        (NODE, runtime_host.NODE_REGISTRATION, Status.FAIL, "-RegisterNewNode"),
        (RELAY, runtime_host.OUTBOUND_BLOCKED, Status.FAIL, "Test-NetConnection"),
    ],
)
async def test_each_host_problem_is_told_with_its_fix(
    text: str, cause: str, status: Status, fix_word: str
) -> None:
    [f] = await _run(_world(text))
    assert f.status is status and f.section == s.RUNTIME_HOST and f.scan == "weekly"
    assert f.evidence["cause"] == cause and SHIR in f.title
    assert any(fix_word in step for step in f.fix)
    assert not any(line.lstrip().startswith("#") for step in f.fix for line in step.splitlines())


async def test_older_runtime_than_the_feature_needs_fails_with_both_versions() -> None:
    fake = FakeWorld(_world(OLD))
    [f] = await _run(fake.world, fake)
    assert f.status is Status.FAIL and "runs 5.31.8600.1; the scan needs 5.40 or later" in f.title
    assert f.evidence["minimumVersion"] == "5.40" and fake.calls[f"purview.ir_status:{SHIR}"] == 1


async def test_a_runtime_already_upgraded_passes() -> None:
    [f] = await _run(_world(OLD, version="5.41.1.0"))
    assert f.status is Status.PASS


async def test_unknown_version_is_a_warn_not_a_fail() -> None:
    [f] = await _run(_world(OLD, version=None))
    assert f.status is Status.WARN and "does not report its version" in f.title


async def test_status_is_not_read_for_other_problems() -> None:
    fake = FakeWorld(_world(JRE))
    await _run(fake.world, fake)
    assert fake.calls[f"purview.ir_status:{SHIR}"] == 0


async def test_a_newest_success_passes() -> None:
    [f] = await _run(_world(None))
    assert f.status is Status.PASS


async def test_another_error_is_skipped_to_scan_history() -> None:
    [f] = await _run(_world("AuthorizationPermissionMismatch"))
    assert f.status is Status.SKIPPED and "scan-history" in f.detail


async def test_azure_runtime_scans_are_skipped() -> None:
    [f] = await runtime_host.run(await FakeWorld(w.adls_world()).target("sales-adls"))
    assert f.status is Status.SKIPPED and "Azure integration runtime" in f.detail


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (JRE, classify.SHIR_JRE_MISSING),
        (JVM, classify.SHIR_JRE_MISSING),
        (TLS, classify.SHIR_TLS_TRUST),
        (NODE, classify.SHIR_NODE_REGISTRATION),
        (RELAY, classify.SHIR_OUTBOUND_BLOCKED),
        (OLD, classify.SHIR_VERSION_TOO_OLD),
    ],
)
def test_classifier_sends_host_errors_to_this_section(text: str, cause: str) -> None:
    found = classify.classify_text(text)
    assert found is not None and found.section == s.RUNTIME_HOST and found.cause == cause


def test_fips_keeps_its_older_classifier_section() -> None:
    found = classify.classify_text(FIPS)
    assert found is not None and found.section == s.SCANS_NO_LONGER_RUN


async def test_scan_history_points_at_the_learn_page_of_a_section_beyond_the_guide() -> None:
    fake = FakeWorld(_world(JRE))
    [f] = await scan_history.run(await fake.target("sales-adls"))
    assert f.section == s.RUNTIME_HOST and "manage-integration-runtimes#prerequisites" in f.detail
    assert "the guide's section" not in f.detail


# --- a word in the error is not yet the cause (reviewer r12) -------------------------------------------

TLS_ON_RELAY = (
    "Failed to send to 'wu2-relay.servicebus.windows.net': The underlying connection was closed: Could not "
    "establish trust relationship for the SSL/TLS secure channel."
)
RELAY_NAMED_ONLY = (
    "Put token failed. status-code: 401, status-description: InvalidSignature: The token has an invalid "
    "signature. TrackingId:6d2e, SystemTracker:atlas-0a1b.servicebus.windows.net:atlas_entities"
)


async def test_a_tls_failure_on_the_relay_is_a_trust_problem_not_a_blocked_port() -> None:
    [f] = await _run(_world(TLS_ON_RELAY))
    assert f.status is Status.WARN and f.evidence["cause"] == runtime_host.TLS_TRUST
    found = classify.classify_text(TLS_ON_RELAY)
    assert found is not None and found.cause == classify.SHIR_TLS_TRUST


async def test_a_relay_host_named_without_a_failed_connection_is_only_a_warning() -> None:
    [f] = await _run(_world(RELAY_NAMED_ONLY))
    assert f.status is Status.WARN and f.evidence["confirmed"] is False
    assert f.evidence["cause"] == runtime_host.OUTBOUND_BLOCKED and "maybe" in f.title


async def test_fips_named_in_passing_is_only_a_warning() -> None:
    [f] = await _run(_world("Connection failed: the server requires a FIPS 140-2 cipher suite."))
    assert f.status is Status.WARN and f.evidence["cause"] == runtime_host.FIPS_MODE

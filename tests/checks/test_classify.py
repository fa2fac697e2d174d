"""Scan error classification on realistic texts, from every field a run carries them in."""

from __future__ import annotations

import pytest

from checks import sections as s
from checks.classify import classify_run, classify_text, error_text
from tests.checks import worlds as w

CASES = [
    (
        "Failed to list blobs: Status: 403 (This request is not authorized to perform this "
        "operation using this permission.) ErrorCode: AuthorizationPermissionMismatch",
        s.SOURCE_ACCESS,
        "AuthorizationPermissionMismatch",
    ),
    (
        "Status: 403 (This request is not authorized to perform this operation.) "
        "ErrorCode: AuthorizationFailure",
        s.PRIVATE_LINK,
        "AuthorizationFailure",
    ),
    (
        "Cannot connect to SQL Database: 'sales-sql.database.windows.net', Database: 'sales'. "
        "Error number: 47073 "
        "Reason: Connection was denied because Deny Public Network Access is set to Yes.",
        s.PRIVATE_LINK,
        "47073",
    ),
    (
        "Cannot open server 'sales-sql' requested by the login. Client with IP address "
        "'20.1.2.3' is not allowed to access the server. Error number: 40615",
        s.PRIVATE_LINK,
        "40615",
    ),
    (
        "Login failed for user '<token-identified principal>'. Error number: 18456, State: 1",
        s.SOURCE_ACCESS,
        "<token-identified principal>",
    ),
    ("Error number: 18456. Login failed for user 'scanner'.", s.SCANS_NO_LONGER_RUN, "18456"),
    (
        "Failed to get secret from Azure Key Vault 'main-kv': Operation returned an invalid status code "
        '\'Forbidden\'. Code: Forbidden. Inner error: {"code":"ForbiddenByRbac"}',
        s.KEY_VAULT_ACCESS,
        "ForbiddenByRbac",
    ),
    (
        "The user, group or application 'appid=1;oid=2' does not have secrets list permission on key vault "
        "'main-kv;location=westeurope'.",
        s.KEY_VAULT_ACCESS,
        "does not have secrets list permission",
    ),
    (
        "Key Vault error: Code=Forbidden InnerError=AccessDenied: Access denied. Caller was not found on any "
        "access policy.",
        s.KEY_VAULT_ACCESS,
        "Caller was not found on any access policy",
    ),
    (
        "Client address is not authorized and caller is not a trusted service. Client address: 20.1.2.3 "
        "Vault: main-kv. Inner error code: ForbiddenByFirewall",
        s.KEY_VAULT_ACCESS,
        "ForbiddenByFirewall",
    ),
    (
        "A secret with (name/id) sql-password/0123abcd was not found in this key vault. Code: SecretNotFound",
        s.KEY_VAULT_SECRET,
        "SecretNotFound",
    ),
    (
        "Failed to read secret from key vault main-kv: Operation returned an invalid status code 'NotFound'",
        s.KEY_VAULT_SECRET,
        "NotFound",
    ),
    (
        "Internal system error. Please contact support with correlationId:1c2d-33 "
        "System Error, contact support.",
        s.SCANS_NO_LONGER_RUN,
        "Internal system error. Please contact support with correlationId",
    ),
    (
        "Unable to setup config overrides for this scan. Exception:'Type=Microsoft.WindowsAzure.Storage."
        "StorageException,Message=The remote server returned an error: (404) Not Found.",
        s.SCANS_NO_LONGER_RUN,
        "Unable to setup config overrides",
    ),
    (
        "This implementation is not part of the Windows Platform FIPS validated cryptographic algorithms.",
        s.SCANS_NO_LONGER_RUN,
        "FIPS validated",
    ),
    (
        "The integration runtime 'shir-01' is offline.",
        s.SCANS_NO_LONGER_RUN,
        "integration runtime 'shir-01' is offline",
    ),
    (
        "Resource 'pvmanagedsa' was disallowed by policy. (Code: RequestDisallowedByPolicy)",
        s.SCANS_NO_LONGER_RUN,
        "RequestDisallowedByPolicy",
    ),
]


ARM_DENIED = (
    "The client 'a364' with object id 'a364' does not have authorization to perform action "
    "'Microsoft.Resources/subscriptions/resources/read' over scope '{scope}' or the scope is invalid. "
    "(Code: AuthorizationFailed)"
)


@pytest.mark.parametrize(
    ("scope", "section"),
    [
        ("/subscriptions/8320debb", s.SCAN_MULTIPLE),
        ("/subscriptions/8320debb/resourceGroups/rg-x", s.SCAN_MULTIPLE),
        (
            "/subscriptions/8320debb/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/st",
            s.REGISTER_SINGLE,
        ),
    ],
)
def test_arm_authorization_failed_by_scope(scope: str, section: str) -> None:
    found = classify_text(ARM_DENIED.format(scope=scope))
    assert found is not None and found.section == section and found.matched == "AuthorizationFailed"


@pytest.mark.parametrize(("text", "section", "matched"), CASES)
def test_realistic_texts(text: str, section: str, matched: str) -> None:
    found = classify_text(text)
    assert found is not None
    assert (found.section, found.matched) == (section, matched)


def test_case_insensitive() -> None:
    found = classify_text("errorcode: authorizationpermissionmismatch")
    assert found is not None and found.section == s.SOURCE_ACCESS


def test_storage_code_beats_key_vault_context() -> None:
    """A storage 403 mentioning the Key Vault-backed credential is still a storage permission problem."""
    text = "Credential from key vault main-kv used. Storage returned 403: AuthorizationPermissionMismatch"
    found = classify_text(text)
    assert found is not None and found.section == s.SOURCE_ACCESS


def test_number_must_not_be_part_of_a_longer_number() -> None:
    assert classify_text("request id 1847073999 failed") is None


def test_unrecognised_text() -> None:
    assert classify_text("Something unexpected happened.") is None


def test_reads_error_object_and_notifications() -> None:
    by_error = w.scan_run(
        "Failed", "2026-11-28T07:14:00Z", error={"code": "AuthorizationFailure", "message": "x"}
    )
    found = classify_run(by_error)
    assert found is not None and found.section == s.PRIVATE_LINK
    by_note = w.scan_run("Failed", "2026-11-28T07:14:00Z", notifications=["SecretNotFound: sql-password"])
    found = classify_run(by_note)
    assert found is not None and found.section == s.KEY_VAULT_SECRET
    assert "SecretNotFound" in error_text(by_note)


def test_run_without_error() -> None:
    assert classify_run(w.scan_run("Succeeded", "2026-11-28T07:14:00Z")) is None
    assert classify_run({"status": "Failed", "error": None, "diagnostics": None}) is None


# --- issue 8: shared key, SQL firewall, Entra-only, runtime-aware internal errors --------------------

SHARED_KEY = (
    "Failed to list the containers of 'https://stops.blob.core.windows.net/': Status: 403 (Key based "
    "authentication is not permitted on this storage account.) ErrorCode: KeyBasedAuthenticationNotPermitted"
)
SQL_FIREWALL = (
    "Failed to connect to 'sales-sql.database.windows.net', database 'sales'. Cannot open server 'sales-sql' "
    "requested by the login. Client with IP address '20.42.6.99' is not allowed to access the server.  To "
    "enable access, use the Azure Management Portal or run sp_set_firewall_rule on the master database to "
    "create a firewall rule for this IP address or address range.  It may take up to five minutes for this "
    "change to take effect. Error number: 40615, State: 1, Class: 14"
)
ENTRA_ONLY = (
    "Failed to connect to 'sales-sql.database.windows.net', database 'sales' with SQL authentication. "
    "Login failed for user 'purview_scanner'. Reason: Azure Active Directory only authentication is enabled. "
    "Please contact your system administrator. Error number: 18456, State: 1, Class: 14"
)
ENTRA_ONLY_NEW = (
    "Login failed for user 'purview_scanner'. Reason: Microsoft Entra-only authentication is enabled. "
    "Error number: 18456"
)
INTERNAL = (
    "Internal system error. Please contact support with correlationId:4f1c7d2e-93b1-4c55-b1d4-0b6a0e1f9a21 "
    "System Error, contact support."
)


@pytest.mark.parametrize(
    ("text", "section", "cause", "matched"),
    [
        (SHARED_KEY, s.SOURCE_ACCESS, "storage-shared-key-disabled", "KeyBasedAuthenticationNotPermitted"),
        (
            "Status: 403 (Key based authentication is not permitted on this storage account.)",
            s.SOURCE_ACCESS,
            "storage-shared-key-disabled",
            "Key based authentication is not permitted",
        ),
        (SQL_FIREWALL, s.PRIVATE_LINK, "sql-firewall", "40615"),
        (
            "Cannot open server 'sales-sql' requested by the login. Client with IP address '20.42.6.99' is "
            "not allowed to access the server.",
            s.PRIVATE_LINK,
            "sql-firewall",
            "Client with IP address '20.42.6.99' is not allowed to access the server",
        ),
        (
            ENTRA_ONLY,
            s.SOURCE_ACCESS,
            "sql-entra-only",
            "Azure Active Directory only authentication is enabled",
        ),
        (ENTRA_ONLY_NEW, s.SOURCE_ACCESS, "sql-entra-only", "Microsoft Entra-only authentication is enabled"),
    ],
)
def test_issue8_rules(text: str, section: str, cause: str, matched: str) -> None:
    found = classify_text(text)
    assert found is not None
    assert (found.section, found.cause, found.matched) == (section, cause, matched)


def test_shared_key_is_not_read_as_a_network_rule() -> None:
    """Without its own rule, the 403 text would fall to AuthorizationFailure's "not authorized" (network)."""
    text = "This request is not authorized to perform this operation. " + SHARED_KEY
    found = classify_text(text)
    assert found is not None and found.cause == "storage-shared-key-disabled"


def test_plain_18456_stays_a_wrong_or_rotated_password() -> None:
    found = classify_text("Login failed for user 'purview_scanner'. Error number: 18456, State: 1")
    assert found is not None and found.section == s.SCANS_NO_LONGER_RUN and found.cause == "sql-login-failed"


def test_entra_only_words_without_a_login_failure_are_not_entra_only() -> None:
    found = classify_text(
        "Resource 'sql' was disallowed by policy: Microsoft Entra-only authentication enabled"
    )
    assert found is not None and found.cause != "sql-entra-only"


def _internal_run() -> dict[str, object]:
    return w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=INTERNAL)


@pytest.mark.parametrize(
    ("connected_via", "cause"),
    [
        (None, "purview-internal-error"),  # Azure IR
        ({"referenceName": "AutoResolveIntegrationRuntime"}, "purview-internal-error"),
        ({"referenceName": "managed-ir", "integrationRuntimeType": "Managed"}, "purview-internal-error"),
        ({"referenceName": "shir-01", "integrationRuntimeType": "SelfHosted"}, "shir-cannot-reach-purview"),
        ({"referenceName": "shir-01"}, "shir-cannot-reach-purview"),  # type unknown: the old reading
    ],
)
def test_internal_system_error_is_read_with_the_scans_runtime(
    connected_via: dict[str, str] | None, cause: str
) -> None:
    scan = w.scan("weekly", "AdlsGen2Msi")
    scan["properties"]["connectedVia"] = connected_via
    found = classify_run(_internal_run(), scan)
    assert found is not None and found.cause == cause and found.section == s.SCANS_NO_LONGER_RUN
    if cause == "purview-internal-error":
        assert "self-hosted" not in found.reason.replace("not a self-hosted", "")


def test_internal_system_error_runtime_resource_kind_decides_an_untyped_name() -> None:
    scan = w.scan("weekly", "AdlsGen2Msi", ir="managed-ir")
    managed = w.integration_runtime("managed-ir", "Managed")
    found = classify_run(_internal_run(), scan, runtime=managed)
    assert found is not None and found.cause == "purview-internal-error"
    shir = w.integration_runtime("shir-01", "SelfHosted")
    found = classify_run(_internal_run(), scan, runtime=shir)
    assert found is not None and found.cause == "shir-cannot-reach-purview"


def test_old_callers_without_a_scan_keep_the_self_hosted_reading() -> None:
    found = classify_run(_internal_run())
    assert found is not None and found.reason == "self-hosted integration runtime cannot reach Purview"

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

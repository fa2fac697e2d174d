"""Anchors of the sections of Microsoft's guide "Troubleshoot your connections in Microsoft Purview"."""

SOURCE_ACCESS = "permission-the-credential-on-the-data-source"
REGISTER_SINGLE = "registering-single-azure-data-source"
SCAN_MULTIPLE = "scanning-multiple-azure-data-sources"
PRIVATE_LINK = "scanning-data-sources-using-private-link"
KEY_VAULT_SECRET = "storing-your-credential-in-your-key-vault-and-using-the-right-secret-name-and-version"
KEY_VAULT_ACCESS = "verify-permissions-for-the-microsoft-purview-managed-identity-on-your-azure-key-vault"
SCANS_NO_LONGER_RUN = "scans-no-longer-run"

DEFAULT_DOCS_URL = "https://learn.microsoft.com/en-us/purview/troubleshoot-connections"


def doc_url(docs_base: str, section: str) -> str:
    """The link to one section of the guide (or of an internal mirror of it)."""
    return f"{docs_base.split('#', 1)[0]}#{section}"

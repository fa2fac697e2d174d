"""Anchors of the sections of Microsoft's guide "Troubleshoot your connections in Microsoft Purview"."""

SOURCE_ACCESS = "permission-the-credential-on-the-data-source"
REGISTER_SINGLE = "registering-single-azure-data-source"
SCAN_MULTIPLE = "scanning-multiple-azure-data-sources"
PRIVATE_LINK = "scanning-data-sources-using-private-link"
KEY_VAULT_SECRET = "storing-your-credential-in-your-key-vault-and-using-the-right-secret-name-and-version"
KEY_VAULT_ACCESS = "verify-permissions-for-the-microsoft-purview-managed-identity-on-your-azure-key-vault"
SCANS_NO_LONGER_RUN = "scans-no-longer-run"

# Beyond the guide (issue 12): sections documented on other Microsoft Learn pages, linked there (PAGES).
SP_CREDENTIAL = "service-principal-credential-expired"
COLLECTIONS = "scan-collection-outside-source-collection"
RUNTIME_HOST = "self-hosted-integration-runtime-host"
POWER_BI = "power-bi-tenant-settings"
PRIVATE_DNS = "private-endpoint-dns"
PURVIEW_PRIVATE = "purview-account-private-endpoints"

DEFAULT_DOCS_URL = "https://learn.microsoft.com/en-us/purview/troubleshoot-connections"

# the guide's own headings, as links name them
TITLES = {
    SOURCE_ACCESS: "Permission the credential on the data source",
    REGISTER_SINGLE: "Registering single Azure data source",
    SCAN_MULTIPLE: "Scanning multiple Azure data sources",
    PRIVATE_LINK: "Scanning data sources using Private Link",
    KEY_VAULT_SECRET: "Storing your credential in your key vault and using the right secret name and version",
    KEY_VAULT_ACCESS: "Verify permissions for the Microsoft Purview managed identity on your Azure Key Vault",
    SCANS_NO_LONGER_RUN: "Scans no longer run",
    # beyond the guide: the titles of the Learn pages in PAGES
    PRIVATE_DNS: "Azure Private Endpoint private DNS zone values",
    PURVIEW_PRIVATE: "Troubleshooting private endpoint configuration for Microsoft Purview accounts",
}


def title(section: str) -> str:
    """The guide's heading for an anchor; an anchor it does not know, spelt out."""
    return TITLES.get(section) or section.replace("-", " ").strip().capitalize() or "Troubleshooting"


PAGES: dict[str, str] = {
    SP_CREDENTIAL: "https://learn.microsoft.com/en-us/entra/identity-platform/how-to-add-credentials#add-a-credential-to-your-application",
    COLLECTIONS: "https://learn.microsoft.com/en-us/purview/concept-best-practices-scanning#design-recommendations",
    RUNTIME_HOST: "https://learn.microsoft.com/en-us/purview/manage-integration-runtimes#prerequisites",
    POWER_BI: "https://learn.microsoft.com/en-us/purview/register-scan-power-bi-tenant#deployment-checklist",
    PRIVATE_DNS: "https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns#azure-services-dns-zone-configuration",
    PURVIEW_PRIVATE: "https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot#recommended-troubleshooting-steps",
}
"""Section → its Microsoft Learn page (with the heading's anchor), for sections the guide does not cover."""


def doc_url(docs_base: str, section: str) -> str:
    """The link to one section of the guide (or of an internal mirror of it); a section beyond the guide
    links to the Learn page that documents it."""
    page = PAGES.get(section)
    if page is not None:
        return page
    return f"{docs_base.split('#', 1)[0]}#{section}"

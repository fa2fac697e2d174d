"""Where each Azure plane lives and which token scope it takes, per cloud.

The gateways read URLs only from here, so a sovereign cloud, a proxy or the local sandbox is a change of
settings and never a branch in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class AzureEndpoints:
    arm_url: str
    arm_scope: str
    purview_url_template: str
    """Data-plane base of one Purview account; contains `{account}` (the scanning API is under `/scan`)."""
    purview_scope: str
    graph_url: str
    graph_scope: str
    keyvault_verify_challenge: bool = True
    """Off only for a local stand-in, whose vault host cannot match the challenge's resource."""
    call_timeout: float = 20.0
    """Seconds one gateway call may take, retries and paging included."""

    def purview_url(self, account: str) -> str:
        """The data-plane base URL of one account (plain replace: the template may hold other braces)."""
        return self.purview_url_template.replace("{account}", account).rstrip("/")


_PRESETS = MappingProxyType(
    {
        "AzurePublicCloud": AzureEndpoints(
            arm_url="https://management.azure.com",
            arm_scope="https://management.azure.com/.default",
            purview_url_template="https://{account}.purview.azure.com",
            purview_scope="https://purview.azure.net/.default",
            graph_url="https://graph.microsoft.com",
            graph_scope="https://graph.microsoft.com/.default",
        ),
        "AzureChinaCloud": AzureEndpoints(
            arm_url="https://management.chinacloudapi.cn",
            arm_scope="https://management.chinacloudapi.cn/.default",
            purview_url_template="https://{account}.purview.azure.cn",
            # UNCONFIRMED: the Purview data-plane audience in Azure China is not in a checked source.
            purview_scope="https://purview.azure.cn/.default",
            graph_url="https://microsoftgraph.chinacloudapi.cn",
            graph_scope="https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        "AzureUSGovernment": AzureEndpoints(
            arm_url="https://management.usgovcloudapi.net",
            arm_scope="https://management.usgovcloudapi.net/.default",
            purview_url_template="https://{account}.purview.azure.us",
            # UNCONFIRMED: the Purview data-plane audience in Azure US Government is not in a checked source.
            purview_scope="https://purview.azure.us/.default",
            graph_url="https://graph.microsoft.us",
            graph_scope="https://graph.microsoft.us/.default",
        ),
    }
)


def cloud_preset(name: str) -> AzureEndpoints:
    """The endpoints of a named cloud (`PURVIEW_BOT_CLOUD`); overrides go through `dataclasses.replace`."""
    try:
        return _PRESETS[name]
    except KeyError:
        valid = ", ".join(_PRESETS)
        raise ValueError(f"unknown Azure cloud {name!r}; valid names: {valid}") from None

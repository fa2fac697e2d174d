"""Who the scan connects as: Purview's own managed identity, a user-assigned one, or a service principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.accounts import arm_name
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json


@dataclass(frozen=True)
class Identity:
    object_id: str
    display_name: str
    kind: str  # "purview-msi" | "managed-identity" | "service-principal" | "user"
    app_id: str | None = None

    def evidence(self) -> dict[str, Any]:
        return {"objectId": self.object_id, "displayName": self.display_name, "kind": self.kind}


def credential_type(credential: Json) -> str:
    """Both wire shapes: the spec's top-level `kind`, or the observed `properties.type`."""
    kind = credential.get("kind") or (credential.get("properties") or {}).get("type")
    return str(kind or "")


def type_properties(credential: Json) -> dict[str, Any]:
    props = credential.get("properties") or {}
    tp = props.get("typeProperties") or {}
    return tp if isinstance(tp, dict) else {}


def scan_uses_msi(scan: Json) -> bool:
    return str(scan.get("kind", "")).endswith("Msi")


def scan_credential_name(scan: Json) -> str | None:
    cred = (scan.get("properties") or {}).get("credential") or {}
    name = cred.get("referenceName") if isinstance(cred, dict) else None
    return str(name) if name else None


async def purview_identity(facts: Facts) -> Identity:
    """The Purview account's system-assigned identity (`identity.principalId` of the ARM account)."""
    account = await facts.account()
    principal = (account.get("identity") or {}).get("principalId")
    if not principal:
        raise GatewayError(
            f"read the managed identity of Purview account {facts.account_name}",
            code="NoSystemAssignedIdentity",
            message="the ARM account has no identity.principalId (no system-assigned identity)",
        )
    return Identity(
        object_id=str(principal),
        display_name=str(account.get("name", facts.account_name)),
        kind="purview-msi",
    )


async def scan_identity(facts: Facts, scan: Json) -> Identity | None:
    """The Entra identity a scan connects as; None when its credential is a secret (key, SQL login…).

    Raises GatewayError when the identity exists but cannot be resolved (e.g. no Graph access for an
    app id), which makes the dependent finding `unknown`.
    """
    if scan_uses_msi(scan):
        return await purview_identity(facts)
    name = scan_credential_name(scan)
    if not name:
        return None
    credential = await facts.credential(name)
    ctype = credential_type(credential).lower()
    tp = type_properties(credential)
    if ctype == "managedidentity" and tp.get("principalId"):
        # a user-assigned identity is shown in Entra under its resource name, not the credential's
        resource_id = str(tp.get("resourceId") or "")
        display = arm_name(resource_id) if resource_id else name
        return Identity(object_id=str(tp["principalId"]), display_name=display, kind="managed-identity")
    if ctype == "serviceprincipal" and tp.get("servicePrincipalId"):
        app_id = str(tp["servicePrincipalId"])
        sp = await facts.service_principal_by_app_id(app_id)
        if sp is None:
            raise GatewayError(
                f"resolve service principal with app id {app_id} (Microsoft Graph)",
                status=404,
                code="NotFound",
                message="no service principal with that app id in the tenant",
            )
        return Identity(
            object_id=str(sp["id"]),
            display_name=str(sp.get("displayName") or app_id),
            kind="service-principal",
            app_id=app_id,
        )
    return None

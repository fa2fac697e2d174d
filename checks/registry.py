"""The catalogue in report order: explicit, so adding a check is one import and one line."""

from __future__ import annotations

from checks.catalogue import (
    azure_policy,
    collection_scope,
    credential_expiry,
    credential_rotation,
    integration_runtime,
    key_vault_access,
    key_vault_secret,
    power_bi,
    private_dns,
    private_network,
    purview_private,
    reader_role,
    runtime_host,
    scan_history,
    scan_schedule,
    source_access,
)
from checks.check import Check

CATALOGUE: tuple[Check, ...] = (
    scan_history.CHECK,
    source_access.CHECK,
    reader_role.CHECK,
    private_network.CHECK,
    private_dns.CHECK,
    purview_private.CHECK,
    key_vault_secret.CHECK,
    key_vault_access.CHECK,
    credential_rotation.CHECK,
    azure_policy.CHECK,
    integration_runtime.CHECK,
    scan_schedule.CHECK,
    credential_expiry.CHECK,
    collection_scope.CHECK,
    runtime_host.CHECK,
    power_bi.CHECK,
)

"""The catalogue in report order: explicit, so adding a check is one import and one line."""

from __future__ import annotations

from checks.catalogue import (
    azure_policy,
    credential_rotation,
    integration_runtime,
    key_vault_access,
    key_vault_secret,
    private_network,
    reader_role,
    scan_history,
    source_access,
)
from checks.check import Check

CATALOGUE: tuple[Check, ...] = (
    scan_history.CHECK,
    source_access.CHECK,
    reader_role.CHECK,
    private_network.CHECK,
    key_vault_secret.CHECK,
    key_vault_access.CHECK,
    credential_rotation.CHECK,
    azure_policy.CHECK,
    integration_runtime.CHECK,
)

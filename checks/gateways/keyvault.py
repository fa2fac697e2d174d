"""Key Vault: the properties of a secret's versions, and nothing that carries a value.

Only listings are called: `list_properties_of_secret_versions` (`GET {vault}/secrets/{name}/versions`) and
`list_deleted_secrets` (`GET {vault}/deletedsecrets`), both with secrets/list; their items carry no value.
`get_secret` and `get_deleted_secret` are never used, so a secret value never enters the process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.keyvault.secrets.aio import SecretClient

from checks.errors import GatewayError
from checks.gateways.api import Json, SecretVersion
from checks.gateways.pipeline import Call, guarded, trim

KEY_VAULT_API_VERSION = "7.5"

PERMISSION = "secrets List (access policy) or Key Vault Reader (RBAC) on the vault"


class KeyVaultGateway:
    """`KeyVaultApi` with one `SecretClient` per vault URL, kept until `close()`."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        verify_challenge: bool,
        call_timeout: float,
        client_options: Callable[[], dict[str, Any]],
    ) -> None:
        self._credential = credential
        self._verify = verify_challenge
        self._timeout = call_timeout
        self._options = client_options
        self._clients: dict[str, SecretClient] = {}

    def _client(self, vault_url: str) -> SecretClient:
        key = vault_url.strip().rstrip("/").lower()
        if key not in self._clients:
            self._clients[key] = SecretClient(
                vault_url.strip(),
                self._credential,
                verify_challenge_resource=self._verify,
                # a published data-plane version, pinned: the SDK's default moves with each release
                api_version=KEY_VAULT_API_VERSION,
                **self._options(),
            )
        return self._clients[key]

    async def secret_versions(self, vault_url: str, name: str) -> list[SecretVersion]:
        call = Call(f"list versions of secret {name} in {vault_url.rstrip('/')}", PERMISSION)

        async def read() -> list[SecretVersion]:
            try:
                client = self._client(vault_url)
                return [
                    SecretVersion(
                        id=str(p.id),
                        version=p.version or "",
                        enabled=p.enabled,
                        created=p.created_on,
                        updated=p.updated_on,
                        expires=p.expires_on,
                        not_before=p.not_before,
                    )
                    async for p in client.list_properties_of_secret_versions(name)
                ]
            except ValueError as exc:  # a bad vault URL, or a challenge naming another resource
                raise GatewayError(call.label, code="InvalidVault", message=trim(str(exc))) from exc

        return await guarded(call, self._timeout, read)

    async def deleted_secrets(self, vault_url: str) -> list[Json]:
        """The vault's soft-deleted secrets: name, deletion and purge dates, never a value.

        https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-deleted-secrets ("requires the
        secrets/list permission"; its items are DeletedSecretItem, which has no value).
        """
        call = Call(f"list deleted secrets in {vault_url.rstrip('/')}", PERMISSION)

        async def read() -> list[Json]:
            try:
                client = self._client(vault_url)
                return [
                    {
                        "name": d.name or "",
                        "recoveryId": d.recovery_id,
                        "deletedDate": _iso(d.deleted_date),
                        "scheduledPurgeDate": _iso(d.scheduled_purge_date),
                    }
                    async for d in client.list_deleted_secrets()
                ]
            except ValueError as exc:
                raise GatewayError(call.label, code="InvalidVault", message=trim(str(exc))) from exc

        return await guarded(call, self._timeout, read)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None

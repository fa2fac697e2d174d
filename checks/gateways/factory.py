"""The process-wide Azure clients, and the per-account `Gateways` a diagnosis reads through.

ARM, Key Vault and Graph are per process (one role-definition cache, one `SecretClient` per vault);
Purview is per account, cached here. All share the caller's `aiohttp.ClientSession`; the session and the
credential stay the caller's to close.
"""

from __future__ import annotations

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.mgmt.authorization.aio import AuthorizationManagementClient

from checks.accounts import AccountRef
from checks.facts import Gateways
from checks.gateways.arm import ArmGateway
from checks.gateways.endpoints import AzureEndpoints
from checks.gateways.graph import GraphGateway
from checks.gateways.keyvault import KeyVaultGateway
from checks.gateways.monitor import MonitorGateway
from checks.gateways.pipeline import (
    CallObserver,
    GuardedCredential,
    Observation,
    RetrySettings,
    arm_pipeline_client,
    pipeline_client,
    sdk_options,
)
from checks.gateways.purview import PurviewGateway

# azure-mgmt-authorization wants a subscription id, but the calls made (list_for_scope, get_by_id) take
# full scopes and ids and never use it.
_UNUSED_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class AzureClients:
    """Owns the SDK clients and pipelines; `gateways(account)` hands a diagnosis its read surface."""

    def __init__(
        self,
        endpoints: AzureEndpoints,
        credential: AsyncTokenCredential,
        session: aiohttp.ClientSession,
        retry: RetrySettings,
        observer: CallObserver | None = None,
    ) -> None:
        self.endpoints = endpoints
        self._credential = GuardedCredential(credential)
        self._session = session
        self._retry = retry
        self._observer = observer
        timeout = endpoints.call_timeout
        arm = self._observation("arm")
        self.arm = ArmGateway(
            arm_pipeline_client(
                endpoints.arm_url, self._credential, endpoints.arm_scope, session, retry, arm
            ),
            AuthorizationManagementClient(
                self._credential,
                _UNUSED_SUBSCRIPTION,
                base_url=endpoints.arm_url.rstrip("/"),
                credential_scopes=[endpoints.arm_scope],
                **sdk_options(session, retry, arm),
            ),
            call_timeout=timeout,
        )
        keyvault = self._observation("keyvault")
        self.keyvault = KeyVaultGateway(
            self._credential,
            verify_challenge=endpoints.keyvault_verify_challenge,
            call_timeout=timeout,
            client_options=lambda: sdk_options(session, retry, keyvault),
        )
        self.graph = GraphGateway(
            pipeline_client(
                endpoints.graph_url,
                self._credential,
                endpoints.graph_scope,
                session,
                retry,
                self._observation("graph"),
            ),
            call_timeout=timeout,
        )
        self.monitor = MonitorGateway(  # the Activity Log: an ARM read with its own pipeline
            arm_pipeline_client(
                endpoints.arm_url, self._credential, endpoints.arm_scope, session, retry, arm
            ),
            call_timeout=timeout,
        )
        self._purview: dict[str, PurviewGateway] = {}

    @classmethod
    async def open(
        cls,
        endpoints: AzureEndpoints,
        credential: AsyncTokenCredential,
        session: aiohttp.ClientSession,
        retry: RetrySettings | None = None,
        observer: CallObserver | None = None,
    ) -> AzureClients:
        """Build the clients (no network: the first token and connection come with the first call).

        `observer` hears every HTTP attempt, labelled with its plane: `arm`, `purview`, `keyvault`, `graph`.
        """
        return cls(endpoints, credential, session, retry or RetrySettings(), observer)

    def _observation(self, plane: str) -> Observation | None:
        return Observation(self._observer, plane) if self._observer is not None else None

    def purview(self, account: str) -> PurviewGateway:
        """The account's gateway; `account` may be a name or the account's ARM id."""
        name = AccountRef(account).name
        key = name.lower()
        if key not in self._purview:
            url = self.endpoints.purview_url(name)
            client = pipeline_client(
                url,
                self._credential,
                self.endpoints.purview_scope,
                self._session,
                self._retry,
                self._observation("purview"),
            )
            self._purview[key] = PurviewGateway(client, name, call_timeout=self.endpoints.call_timeout)
        return self._purview[key]

    def gateways(self, account: str) -> Gateways:
        return Gateways(
            purview=self.purview(account),
            arm=self.arm,
            keyvault=self.keyvault,
            graph=self.graph,
            monitor=self.monitor,
        )

    async def close(self) -> None:
        """Close the SDK clients and pipelines; the shared session and the credential stay open."""
        purview, self._purview = list(self._purview.values()), {}
        for gateway in purview:
            await gateway.close()
        await self.keyvault.close()
        await self.graph.close()
        await self.monitor.close()
        await self.arm.close()

    async def __aenter__(self) -> AzureClients:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

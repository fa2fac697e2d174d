"""Microsoft Graph (v1.0) look-ups of service principals and users: only ids and names."""

from __future__ import annotations

from urllib.parse import quote

from checks.errors import NotFoundError
from checks.gateways.api import Json
from checks.gateways.pipeline import Call, Client, guarded, page_items, send_json

PERMISSION = "Microsoft Graph Application.Read.All / User.Read.All"


def _odata_string(value: str) -> str:
    return value.replace("'", "''")


class GraphGateway:
    """`GraphApi`: a missing object is `None` (the check decides); 401/403 raise naming the permission."""

    def __init__(self, client: Client, *, call_timeout: float) -> None:
        self._client = client
        self._timeout = call_timeout

    async def close(self) -> None:
        await self._client.close()

    async def service_principal_by_app_id(self, app_id: str) -> Json | None:
        call = Call(f"find service principal of app {app_id} in Microsoft Graph", PERMISSION)
        url = self._client.format_url("/v1.0/servicePrincipals")
        params = {"$filter": f"appId eq '{_odata_string(app_id)}'", "$select": "id,appId,displayName"}
        try:
            doc = await guarded(
                call, self._timeout, lambda: send_json(self._client, call, "GET", url, params)
            )
        except NotFoundError:
            return None
        items = page_items(doc)
        return items[0] if items else None

    async def user_by_upn(self, upn: str) -> Json | None:
        call = Call(f"GET user {upn} in Microsoft Graph", PERMISSION)
        url = self._client.format_url(f"/v1.0/users/{quote(upn, safe='@')}")
        params = {"$select": "id,displayName,userPrincipalName"}
        try:
            return await guarded(
                call, self._timeout, lambda: send_json(self._client, call, "GET", url, params)
            )
        except NotFoundError:
            return None

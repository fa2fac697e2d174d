"""Microsoft Graph (v1.0) look-ups of service principals and users (ids and names) and of the groups a
directory object belongs to, transitively."""

from __future__ import annotations

from urllib.parse import quote

from checks.errors import NotFoundError
from checks.gateways.api import Json
from checks.gateways.pipeline import Call, Client, get_pages, guarded, page_items, send_json

PERMISSION = "Microsoft Graph Application.Read.All / User.Read.All"
APPLICATION_PERMISSION = "Microsoft Graph Application.Read.All (application permission)"

# Group membership by object id. `directoryObject` has no `transitiveMemberOf` in v1.0 (its only
# membership calls are POST getMemberGroups / checkMemberGroups, which need Directory.Read.All for an
# object of unknown type): https://learn.microsoft.com/graph/api/resources/directoryobject
# So the typed lists are read, service principals first (Purview's identity, a scan's app), with the
# least privileged application permission of each:
#   https://learn.microsoft.com/graph/api/serviceprincipal-list-transitivememberof (Application.Read.All)
#   https://learn.microsoft.com/graph/api/user-list-transitivememberof (User.Read.All)
#   https://learn.microsoft.com/graph/api/group-list-transitivememberof (GroupMember.Read.All)
# A 404 moves on to the next type. No OData cast (`/microsoft.graph.group`): a cast needs the
# advanced-query header (`ConsistencyLevel: eventual`, `$count`) and its lagging index; the items' own
# `@odata.type` tells groups from directory roles and administrative units. Pages follow @odata.nextLink.
MEMBERSHIP_READS: tuple[tuple[str, str], ...] = (
    ("servicePrincipals", "Microsoft Graph Application.Read.All (or Directory.Read.All)"),
    ("users", "Microsoft Graph User.Read.All (or Directory.Read.All)"),
    ("groups", "Microsoft Graph GroupMember.Read.All (or Directory.Read.All)"),
)
GROUP_TYPE = "#microsoft.graph.group"


def _odata_string(value: str) -> str:
    return value.replace("'", "''")


class GraphGateway:
    """`GraphApi`: a missing object is `None` (the check decides); 401/403 raise naming the permission."""

    def __init__(self, client: Client, *, call_timeout: float) -> None:
        self._client = client
        self._timeout = call_timeout

    async def close(self) -> None:
        await self._client.close()

    async def _first(self, call: Call, url: str, params: dict[str, str]) -> Json | None:
        """The first item a filtered list answers (an `appId` filter matches one at most), or None."""
        try:
            doc = await guarded(
                call, self._timeout, lambda: send_json(self._client, call, "GET", url, params)
            )
        except NotFoundError:
            return None
        items = page_items(doc)
        return items[0] if items else None

    async def service_principal_by_app_id(self, app_id: str) -> Json | None:
        call = Call(f"find service principal of app {app_id} in Microsoft Graph", PERMISSION)
        url = self._client.format_url("/v1.0/servicePrincipals")
        params = {"$filter": f"appId eq '{_odata_string(app_id)}'", "$select": "id,appId,displayName"}
        return await self._first(call, url, params)

    async def application_by_app_id(self, app_id: str) -> Json | None:
        """`GET /v1.0/applications?$filter=appId eq '…'`: the app registration's credential metadata.

        Graph never returns a secret's value on a read (`secretText` is only in addPassword's answer):
        https://learn.microsoft.com/graph/api/resources/passwordcredential
        Least privileged application permission: Application.Read.All
        (https://learn.microsoft.com/graph/api/application-list).
        """
        call = Call(f"read app registration {app_id} in Microsoft Graph", APPLICATION_PERMISSION)
        url = self._client.format_url("/v1.0/applications")
        params = {
            "$filter": f"appId eq '{_odata_string(app_id)}'",
            "$select": "id,appId,displayName,passwordCredentials,keyCredentials",
        }
        return await self._first(call, url, params)

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

    async def transitive_group_ids(self, object_id: str) -> frozenset[str]:
        """Lower-case ids of every group the object is a member of, directly or through nested groups.

        Raises `NotFoundError` when no service principal, user or group has that id, and `GatewayError`
        (naming the permission) when Graph refuses the read.
        """
        for collection, permission in MEMBERSHIP_READS:
            try:
                items = await self._transitive_member_of(collection, permission, object_id)
            except NotFoundError:
                continue
            return frozenset(
                str(item["id"]).lower()
                for item in items
                if item.get("id") and str(item.get("@odata.type") or GROUP_TYPE).lower() == GROUP_TYPE
            )
        raise NotFoundError(
            f"list the groups of {object_id} in Microsoft Graph",
            status=404,
            code="Request_ResourceNotFound",
            message="no service principal, user or group has this object id",
            permission=MEMBERSHIP_READS[0][1],
        )

    async def _transitive_member_of(self, collection: str, permission: str, object_id: str) -> list[Json]:
        call = Call(f"list the groups of {collection} {object_id} in Microsoft Graph", permission)
        url = self._client.format_url(f"/v1.0/{collection}/{quote(object_id, safe='')}/transitiveMemberOf")
        return await guarded(call, self._timeout, lambda: self._pages(call, url, {"$select": "id"}))

    async def _pages(self, call: Call, url: str, params: dict[str, str]) -> list[Json]:
        """Every item of a Graph collection, following `@odata.nextLink` (same host only; a link seen
        twice, or more than MAX_PAGES links, ends it)."""
        return await get_pages(self._client, call, url, None, params=params, next_key="@odata.nextLink")

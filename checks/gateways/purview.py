"""Purview's scanning data plane (api-version 2023-09-01) for one account, as wire JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from checks.gateways.api import Json
from checks.gateways.pipeline import Call, Client, get_pages, guarded, page_items, send_json

API_VERSION = "2023-09-01"
PERMISSION = (
    "a Purview collection role that can read scans"
    " (Data Source Administrator or Data Reader on the collection)"
)
_OLDEST = datetime.min.replace(tzinfo=UTC)
COLLECTIONS_API_VERSION = "2019-11-01-preview"
COLLECTIONS_PERMISSION = (
    "a Purview collection role on the root collection (Data Source Administrator or Data Reader) to read"
    " the collection tree"
)


def _q(name: str) -> str:
    return quote(name, safe="")


def _start_time(run: Json) -> datetime:
    try:
        when = datetime.fromisoformat(str(run.get("startTime")))
    except ValueError:
        return _OLDEST
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class PurviewGateway:
    """`PurviewApi` over a bearer-token pipeline whose base URL is the account's data-plane endpoint."""

    def __init__(self, client: Client, account: str, *, call_timeout: float = 20.0) -> None:
        self._client = client
        self.account = account
        self._timeout = call_timeout

    async def close(self) -> None:
        await self._client.close()

    async def _get(self, path: str, label: str) -> Json:
        call = Call(f"GET Purview {label} (account {self.account})", PERMISSION)
        url = self._client.format_url(f"/scan{path}")
        return await guarded(
            call, self._timeout, lambda: send_json(self._client, call, "GET", url, _params())
        )

    async def _list(self, path: str, label: str) -> list[Json]:
        call = Call(f"list Purview {label} (account {self.account})", PERMISSION)
        url = self._client.format_url(f"/scan{path}")
        return await guarded(call, self._timeout, lambda: get_pages(self._client, call, url, API_VERSION))

    async def data_sources(self) -> list[Json]:
        return await self._list("/datasources", "data sources")

    async def data_source(self, name: str) -> Json:
        return await self._get(f"/datasources/{_q(name)}", f"data source {name}")

    async def scans(self, data_source: str) -> list[Json]:
        return await self._list(f"/datasources/{_q(data_source)}/scans", f"scans of {data_source}")

    async def runs(self, data_source: str, scan: str) -> list[Json]:
        """Newest first by `startTime`, whatever order the service used; runs without one go last."""
        path = f"/datasources/{_q(data_source)}/scans/{_q(scan)}/runs"
        runs = await self._list(path, f"runs of scan {data_source}/{scan}")
        return sorted(runs, key=_start_time, reverse=True)

    async def latest_runs(self, data_source: str, scan: str) -> list[Json]:
        """The first page of runs only (no `nextLink` followed), newest first: one request per scan."""
        label = f"latest runs of scan {data_source}/{scan}"
        call = Call(f"list Purview {label} (account {self.account})", PERMISSION)
        url = self._client.format_url(f"/scan/datasources/{_q(data_source)}/scans/{_q(scan)}/runs")
        doc = await guarded(call, self._timeout, lambda: send_json(self._client, call, "GET", url, _params()))
        return sorted(page_items(doc), key=_start_time, reverse=True)

    async def credential(self, name: str) -> Json:
        return await self._get(f"/credentials/{_q(name)}", f"credential {name}")

    async def key_vault_connection(self, name: str) -> Json:
        return await self._get(f"/azureKeyVaults/{_q(name)}", f"Key Vault connection {name}")

    async def integration_runtime(self, name: str) -> Json:
        return await self._get(f"/integrationruntimes/{_q(name)}", f"integration runtime {name}")

    async def integration_runtime_status(self, name: str) -> Json:
        return await self._get(
            f"/integrationruntimes/{_q(name)}/status", f"status of integration runtime {name}"
        )

    async def managed_private_endpoints(self, vnet: str) -> list[Json]:
        path = f"/managedvirtualnetworks/{_q(vnet)}/managedprivateendpoints"
        return await self._list(path, f"managed private endpoints of {vnet}")

    async def scan_trigger(self, data_source: str, scan: str) -> Json:
        """The scan's one trigger, `default`: recurrence, state (Enabled / Disabled), lastScheduled.
        https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/triggers/get
        """
        path = f"/datasources/{_q(data_source)}/scans/{_q(scan)}/triggers/default"
        return await self._get(path, f"schedule of scan {data_source}/{scan}")

    async def collections(self) -> list[Json]:
        """The account data plane's collection list (not under `/scan`), api-version 2019-11-01-preview:
        https://learn.microsoft.com/rest/api/purview/accountdataplane/collections/list-collections
        (endpoint `https://{account}.purview.azure.com/account/`); any collection role can read it."""
        call = Call(f"list Purview collections (account {self.account})", COLLECTIONS_PERMISSION)
        url = self._client.format_url("/account/collections")
        return await guarded(
            call, self._timeout, lambda: get_pages(self._client, call, url, COLLECTIONS_API_VERSION)
        )


def _params() -> dict[str, str]:
    return {"api-version": API_VERSION}

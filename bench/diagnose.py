"""Diagnosis speed: every sample source, of every account, against the sandbox with a fixed latency on
every request.

Prints, per source, the wall time of one diagnosis, the requests it made, the longest chain of dependent
requests it needed (each URL's depth: how many answers must arrive before the URL can be formed), and
wall / (chain × latency). Target: ratio ≤ 1.5 — checks run concurrently and nothing is fetched twice.
Measured warm, as a serving bot is: tokens and Key Vault's challenge are cached by a first pass.

    .venv/bin/python bench/diagnose.py [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from collections import Counter

from bot.azure import azure_clients
from bot.settings import Settings
from checks.diagnose import diagnose
from checks.facts import Facts
from checks.registry import CATALOGUE
from sandbox import Sandbox, load_world
from sandbox.recording import RecordedRequest

# How many answers a URL needs before it can be formed (warm credential, cached challenge).
DEPTHS: list[tuple[str, int]] = [
    (r"/scan/datasources/[^/]+/scans/[^/]+/runs$", 3),
    (r"/scan/datasources/[^/]+/scans$", 2),
    (r"/scan/datasources/[^/]+$", 1),
    (r"/scan/datasources$", 1),
    (r"/scan/credentials/", 3),
    (r"/scan/azureKeyVaults/", 4),
    (r"/scan/integrationruntimes/[^/]+(/status)?$", 3),
    (r"/managedprivateendpoints$", 4),
    (r"^/subscriptions$", 1),
    (r"/secrets/[^/]+/versions$", 5),
    (r"/deletedsecrets(/[^/]+)?$", 6),  # asked only when the versions answered 404 (a soft-deleted secret)
    # private endpoints (private-dns, purview-private): read once a scan's runtime is known to be
    # self-hosted (3); the zones' records and links are named by the endpoint's DNS zone groups (4)
    (r"/scans/[^/]+/triggers/default$", 3),
    (r"/privateDnsZones/[^/]+/(A|virtualNetworkLinks)$", 5),
    (r"/privateEndpoints/[^/]+(/privateDnsZoneGroups)?$", 4),
    # what changed: the last 14 days of the source's group need only its id (2); a vault's group waits
    # for its Key Vault connection (5), a window older than 14 days for the runs (4): counted as 2, the
    # least, so the chain is never overstated
    (r"/providers/Microsoft\.Insights/eventtypes/management/values$", 2),
    # collections (collection-scope): listed once a scan's collection differs from its source's (3)
    (r"/account/collections$", 3),
    (r"/graph/v1\.0/", 4),
    (r"/providers/Microsoft\.PolicyInsights/", 3),
    (r"/providers/Microsoft\.(Purview|KeyVault)/(accounts|vaults)$", 2),
    (r"/providers/Microsoft\.[A-Za-z]+/[A-Za-z]+$", 2),  # resources of a type in a scope
]


def depth(request: RecordedRequest, msi: str, ra_depth: dict[str, int]) -> int:
    path = request.path
    if path.endswith("/denyAssignments"):  # read per scope, whoever the principal
        return (4 if "/Microsoft.KeyVault/vaults/" in path else 1) + 1
    if path.endswith("/roleAssignments"):
        scope_depth = 4 if "/Microsoft.KeyVault/vaults/" in path else 1
        principal_depth = 2 if msi.lower() in str(request.query).lower() else 4
        d = max(scope_depth, principal_depth) + 1
        ra_depth[path] = d
        return d
    if "/roleDefinitions/" in path:
        return max(ra_depth.values(), default=3) + 1
    for pattern, d in DEPTHS:
        if re.search(pattern, path):
            return d
    return 2  # one resource by id: its id comes with the data source


async def main(latency_ms: float) -> None:
    world = load_world(None)
    async with Sandbox(world, latency_ms=latency_ms) as sb:
        os.environ.update(sb.env())
        settings = Settings()
        msis = {
            str(r["name"]): str(r["identity"]["principalId"])
            for r in world.resources
            if r["type"] == "Microsoft.Purview/accounts"
        }
        async with azure_clients(settings) as clients:
            sources = [  # every source of every account of the sample tenant
                (account, str(d["name"]))
                for account in settings.accounts
                for d in await clients.gateways(account).purview.data_sources()
            ]

            async def once(account: str, name: str) -> float:
                t0 = time.perf_counter()
                facts = Facts(clients.gateways(account), account)
                await diagnose(facts, name, checks=CATALOGUE, docs_base=settings.docs_url)
                return time.perf_counter() - t0

            for account, name in sources:  # warm-up: tokens, Key Vault challenge, connections
                await once(account, name)
            print(f"latency {latency_ms:.0f} ms per request\n")
            print(f"{'source':<22}{'wall ms':>9}{'requests':>10}{'chain':>7}{'ratio':>7}{'dup':>5}")
            worst = 0.0
            for account, name in sources:
                msi = msis[account]
                sb.clear_requests()
                wall = await once(account, name)
                made = [r for r in sb.requests if r.host_area != "token" and r.status != 401]
                ra_depth: dict[str, int] = {}
                chain = max((depth(r, msi, ra_depth) for r in made), default=1)
                dup = sum(
                    n - 1
                    for n in Counter((r.method, r.path, str(sorted(r.query.items()))) for r in made).values()
                )
                ratio = wall / (chain * latency_ms / 1000)
                worst = max(worst, ratio)
                print(f"{name:<22}{wall * 1000:>9.0f}{len(made):>10}{chain:>7}{ratio:>7.2f}{dup:>5}")
            print(f"\nworst ratio {worst:.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    asyncio.run(main(parser.parse_args().latency_ms))

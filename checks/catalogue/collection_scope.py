"""collection-scope: a scan must sit in its data source's collection or in a collection below it.

Purview registers a source in one collection and lets its scans live there or in sub-collections ("register
and manage the data source at a parent collection … then you can create corresponding scans under each
subcollection": https://learn.microsoft.com/en-us/purview/concept-best-practices-scanning). When the
source moves to another branch, its scans are left outside it and their runs fail with
`Scan_CollectionOutOfBound`.

Evidence: the source's and the scan's `properties.collection.referenceName` (scanning API) and the account's
collection tree (account data plane `GET https://{account}.purview.azure.com/account/collections`,
api-version 2019-11-01-preview, `parentCollection.referenceName`). Reading the tree needs a collection role
on the root collection; without it the finding is `unknown`, naming the role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from checks import sections
from checks.check import Check, CheckMeta
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.gateways.purview import COLLECTIONS_PERMISSION
from checks.model import Finding, Status
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="collection-scope",
    title="Scan inside its data source's collection",
    sections=(sections.COLLECTIONS,),
    description=(
        "Each scan's collection is the data source's collection or one below it in the account's "
        "collection tree (else its runs fail with Scan_CollectionOutOfBound)."
    ),
)

ROLE = (
    "a collection role on the root collection (Data Source Administrator, which the bot needs for scans "
    "anyway, or Data Reader), granted by a Collection Admin"
)


def collection_of(doc: Json) -> str | None:
    """`properties.collection.referenceName` of a data source or scan (or a source's `parentCollection`)."""
    props = doc.get("properties") or {}
    for key in ("collection", "parentCollection"):
        ref = props.get(key)
        if isinstance(ref, dict) and ref.get("referenceName"):
            return str(ref["referenceName"])
    return None


def parents(collections: list[Json]) -> dict[str, str | None]:
    """Lower-case collection name → lower-case parent name (None at the root)."""
    out: dict[str, str | None] = {}
    for c in collections:
        parent = c.get("parentCollection")
        ref = parent.get("referenceName") if isinstance(parent, dict) else None
        out[str(c.get("name", "")).lower()] = str(ref).lower() if ref else None
    return out


def friendly(collections: list[Json], name: str) -> str:
    """`friendlyName (name)` when the tree has one: the portal shows friendly names."""
    found = next((c for c in collections if str(c.get("name", "")).lower() == name.lower()), None)
    label = str(found.get("friendlyName") or "") if found else ""
    return f"{label} ({name})" if label and label != name else name


def path_up(tree: dict[str, str | None], start: str) -> tuple[list[str], bool]:
    """The chain from `start` to the root; False when a link is missing from the tree."""
    chain = [start.lower()]
    while True:
        here = chain[-1]
        if here not in tree:
            return chain, False
        parent = tree[here]
        if parent is None or parent in chain:
            return chain, True
        chain.append(parent)


def judge(target: Target, scan: Json, collections: list[Json] | GatewayError | None) -> Finding:
    name = str(scan.get("name", ""))
    title = f"Scan {name}: collection"
    source_coll = collection_of(target.source)
    scan_coll = collection_of(scan)
    if not source_coll or not scan_coll:
        return META.skipped(title, "the source or the scan names no collection", scan=name)
    evidence: dict[str, Any] = {"sourceCollection": source_coll, "scanCollection": scan_coll}
    if scan_coll.lower() == source_coll.lower():
        return META.finding(
            Status.PASS,
            f"{title} is the data source's ({scan_coll})",
            detail=f"Scan {name} and data source {target.source_name} are both in collection {scan_coll}.",
            evidence=evidence,
            scan=name,
        )
    if isinstance(collections, GatewayError):
        return META.unknown(
            f"{title}: cannot read the collection tree",
            collections,
            scan=name,
            evidence={**evidence, "grant": ROLE},
        )
    listed = collections or []
    tree = parents(listed)
    chain, complete = path_up(tree, scan_coll)
    evidence["path"] = chain
    if source_coll.lower() in chain:
        return META.finding(
            Status.PASS,
            f"{title} is below the data source's",
            detail=(
                f"Scan {name} is in {friendly(listed, scan_coll)}, below {target.source_name}'s collection "
                f"{friendly(listed, source_coll)} ({' < '.join(chain)})."
            ),
            evidence=evidence,
            scan=name,
        )
    if not complete:
        missing = chain[-1]
        return META.finding(
            Status.UNKNOWN,
            f"{title}: collection {missing} is not in the account's collection list",
            detail=(
                f"The collection list of account {target.account_name} does not show {missing}, so the bot "
                f"cannot tell whether {scan_coll} is below {source_coll}. Grant the bot's identity {ROLE}."
            ),
            evidence={**evidence, "grant": ROLE, "permission": COLLECTIONS_PERMISSION},
            scan=name,
        )
    # the mismatch began when the source or the scan last changed collection, whichever came later: a
    # success before that does not contradict it
    since = max(
        (t for t in (_moved(target.source), _moved(scan)) if t is not None),
        default=None,
    )
    if since is not None:
        evidence["causeSince"] = since.isoformat().replace("+00:00", "Z")
    return META.finding(
        Status.FAIL,
        f"{title} {scan_coll} is outside data source {target.source_name}'s collection {source_coll}",
        detail=(
            f"Scan {name} is in {friendly(listed, scan_coll)}, which is not {friendly(listed, source_coll)} "
            f"nor below it ({' < '.join(chain)}): Purview runs a scan only inside its source's collection "
            "(Scan_CollectionOutOfBound), as happens when the source was moved after the scan was made."
        ),
        fix=[
            "In the Microsoft Purview portal (https://web.purview.azure.com), Data Map > Data sources > "
            f"{target.source_name} > scan {name} > Edit scan: choose collection "
            f"{friendly(listed, source_coll)} or one below it, save, and run the scan.",
            f"Or move data source {target.source_name} back to a collection above "
            f"{friendly(listed, scan_coll)} (Data Map > Data sources > the source > Move).",
        ],
        evidence=evidence,
        scan=name,
    )


def _moved(doc: Json) -> datetime | None:
    """`properties.collection.lastModifiedAt` of a data source or scan."""
    reference = (doc.get("properties") or {}).get("collection")
    return parse_time(reference.get("lastModifiedAt")) if isinstance(reference, dict) else None


async def _collections(target: Target) -> list[Json] | GatewayError:
    try:
        return await target.facts.collections()
    except GatewayError as error:
        return error


def _needs_tree(target: Target, scan: Json) -> bool:
    source_coll, scan_coll = collection_of(target.source), collection_of(scan)
    return bool(source_coll and scan_coll and source_coll.lower() != scan_coll.lower())


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No scan collection to check.")]
    needed = any(_needs_tree(target, s) for s in target.scans)
    collections = await _collections(target) if needed else None
    return [judge(target, s, collections) for s in target.scans]


CHECK = Check(meta=META, run=run)

"""What one sweep reads from Purview: every scan of an account and the first page of its runs.

Read through the account's Purview gateway directly, not a diagnosis's memoised `Facts`: a sweep reads
each scan's newest runs once and needs none of the rest. At most `concurrency` requests are in flight, so
a sweep of an account with hundreds of scans neither trips Purview's throttling nor starves the
diagnoses. A source or scan that cannot be read is skipped (and counted); only a failed listing of the
data sources fails the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from checks.errors import GatewayError
from checks.gateways.api import Json

log = logging.getLogger(__name__)

T = TypeVar("T")


class ScanReader(Protocol):
    """The part of `checks.gateways.api.PurviewApi` the watcher reads."""

    async def data_sources(self) -> list[Json]: ...
    async def data_source(self, name: str) -> Json: ...
    async def scans(self, data_source: str) -> list[Json]: ...
    async def latest_runs(self, data_source: str, scan: str) -> list[Json]: ...


@dataclass(frozen=True)
class ScanState:
    """One scan and its newest runs (newest first), as Purview spells the names."""

    source: str
    collection: str | None
    scan: str
    runs: list[Json]


@dataclass(frozen=True)
class AccountRead:
    scans: list[ScanState]
    unreadable: int  # sources or scans skipped because Purview did not answer


def collection_of(source: Json) -> str | None:
    ref = ((source.get("properties") or {}).get("collection") or {}).get("referenceName")
    return str(ref) if ref else None


class _Bounded:
    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.failed = 0

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            return await op()

    async def tolerant(self, op: Callable[[], Awaitable[list[Json]]], what: str) -> list[Json] | None:
        try:
            return await self.call(op)
        except GatewayError as error:
            self.failed += 1
            log.warning("sweep: skipped %s: %s", what, error.reason)
            return None


async def read_account(reader: ScanReader, concurrency: int) -> AccountRead:
    """Every scan of the account with its first page of runs; raises GatewayError if the data sources
    cannot be listed."""
    bounded = _Bounded(concurrency)
    sources = await bounded.call(reader.data_sources)

    async def runs_of(source: str, scan: str) -> list[Json] | None:
        return await bounded.tolerant(lambda: reader.latest_runs(source, scan), f"runs of {source}/{scan}")

    async def one_source(source: Json) -> list[ScanState]:
        name = str(source.get("name", ""))
        listed = source.get("scans")
        scans = (
            listed
            if isinstance(listed, list)
            else await bounded.tolerant(lambda: reader.scans(name), f"scans of {name}")
        )
        names = [str(s.get("name", "")) for s in scans or [] if isinstance(s, dict) and s.get("name")]
        runs = await asyncio.gather(*(runs_of(name, s) for s in names))
        collection = collection_of(source)
        return [ScanState(name, collection, s, r) for s, r in zip(names, runs, strict=True) if r is not None]

    per_source = await asyncio.gather(*(one_source(s) for s in sources if s.get("name")))
    return AccountRead([state for states in per_source for state in states], bounded.failed)

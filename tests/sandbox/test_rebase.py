"""A world does not rot: the sample tenant, rebased to any clock and diagnosed at that clock, gets the same
verdicts (only the times in the texts move). Without rebasing, a later clock changes them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.azure import azure_clients
from bot.settings import Settings
from checks.diagnose import diagnose
from checks.facts import Facts
from checks.registry import CATALOGUE
from sandbox import Sandbox, World, load_world

WRITTEN = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # the sample's own `now`
NEXT_YEAR = datetime(2027, 12, 15, 10, 30, tzinfo=UTC)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?UTC|Z)?)?")

Verdicts = list[tuple[str, str, str, str | None, str]]


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


async def verdicts(world: World, clock: datetime) -> Verdicts:
    """Every sample source diagnosed by the product's own clients at `clock`: (source, check, status,
    scan, title with its times masked)."""
    async with Sandbox(world) as sb:
        os.environ.update(sb.env())
        settings = Settings()
        account = settings.accounts[0]
        async with azure_clients(settings) as clients:
            names = [str(d["name"]) for d in await clients.gateways(account).purview.data_sources()]
            out: Verdicts = []
            for name in names:
                facts = Facts(clients.gateways(account), account)
                report = await diagnose(facts, name, checks=CATALOGUE, docs_base=settings.docs_url, now=clock)
                out += [
                    (name, f.check, f.status.value, f.scan, _TIME.sub("<time>", f.title))
                    for f in report.findings
                ]
    return sorted(out)


async def test_the_sample_reads_the_same_next_year(clean_env: None) -> None:
    as_written = await verdicts(load_world(None, rebase_to=WRITTEN), WRITTEN)
    next_year = await verdicts(load_world(None, rebase_to=NEXT_YEAR), NEXT_YEAR)
    assert next_year == as_written
    assert {status for _, _, status, _, _ in as_written} >= {"fail", "pass"}


async def test_without_rebasing_the_sample_rots(clean_env: None) -> None:
    as_written = await verdicts(load_world(None, rebase_to=None), WRITTEN)
    stale = await verdicts(load_world(None, rebase_to=None), NEXT_YEAR)
    assert stale != as_written

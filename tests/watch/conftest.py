"""The watcher between the sandbox (Azure), the fake Slack and a real SQLite store in tmp_path.

Worlds are dicts built from the sample tenant; runs are added to the running sandbox's world between
sweeps (the sandbox serves its world's run lists as they are at each request). The watcher's clock is the
sample's fixed "now", so the tests do not depend on the day they run.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.azure import azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.slack_client import web_client
from bot.store import Store, open_store
from checks.gateways import factory
from checks.gateways.factory import AzureClients
from checks.model import Report
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher
from handlers.watch.config import WatchConfig
from handlers.watch.routing import Route, Router
from handlers.watch.watcher import Watcher
from sandbox import Sandbox, load_world
from tests.slack.conftest import FAST_AZURE_RETRY
from tests.slack.fake_slack import Call, FakeSlack, Json, _parse, _response_json

ACCOUNT = "contoso-pv"
CHANNEL = "C0ALERTS"
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # the sample world's fixed clock
TOKEN = "xoxb-watcher-test"


_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")


def shown(text: str) -> str:
    """What a reader in UTC sees, roughly: `<!date^…|fallback>` as its fallback, no `*` or backticks."""
    return _DATE.sub(r"\1", text).replace("`", "").replace("*", "")


def assert_block_kit(blocks: Any, limit: int = 50) -> None:
    """Every block parses as slack-sdk's model of its type and passes its validation (Slack's limits:
    50 blocks in a message, 100 in a Home tab)."""
    from slack_sdk.models.blocks import Block

    assert isinstance(blocks, list) and 0 < len(blocks) <= limit
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, f"not a Block Kit block: {raw}"
        block.validate_json()


def sample_world() -> dict[str, Any]:
    text = (resources.files("sandbox") / "worlds" / "sample.yaml").read_text(encoding="utf-8")
    world: dict[str, Any] = yaml.safe_load(text)
    return world


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def make_run(template: Json, *, status: str, ended: datetime, run_id: str | None = None) -> Json:
    """A run like `template` (its error text and shape), with a new id, status and times."""
    run = copy.deepcopy(template)
    run["id"] = run_id or str(uuid.uuid4())
    run["status"] = status
    run["startTime"] = iso(ended - timedelta(minutes=2))
    run["endTime"] = iso(ended)
    if status.lower() == "succeeded":
        run["errorMessage"] = None
        run["error"] = None
    return run


def storm_world(count: int, ended: datetime) -> tuple[dict[str, Any], list[str]]:
    """The sample plus `count` SQL sources like finance-sql (one vault, Get but not List), all failing."""
    world = sample_world()
    pv = world["purview"][ACCOUNT]
    source = next(d for d in pv["dataSources"] if d["name"] == "finance-sql")
    scans = pv["scans"]["finance-sql"]
    template = pv["runs"]["finance-sql/nightly"][0]
    names = []
    for i in range(count):
        name = f"fin-sql-{i:02d}"
        names.append(name)
        doc = copy.deepcopy(source)
        doc["name"], doc["id"] = name, f"datasources/{name}"
        pv["dataSources"].append(doc)
        pv["scans"][name] = copy.deepcopy(scans)
        pv["runs"][f"{name}/nightly"] = [make_run(template, status="Failed", ended=ended)]
    return world, names


class RefusingSlack(FakeSlack):
    """The fake Slack, with channels that refuse the bot as Slack does: `refuse[channel] = "is_archived"`
    makes chat.postMessage there answer `{"ok": false, "error": "is_archived"}`; `refuse_join` the same
    for conversations.join (a private channel the bot was removed from: `not_in_channel`, then
    `method_not_supported_for_channel_type`)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: dict[str, str] = {}
        self.refuse_join: dict[str, str] = {}

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        refusals = {"chat.postMessage": self.refuse, "conversations.join": self.refuse_join}.get(method)
        if refusals:
            body, args = await _parse(request)
            error = refusals.get(str(args.get("channel", "")))
            if error is not None:
                response = web.json_response({"ok": False, "error": error})
                call = Call(method, args, body, dict(request.headers), time.monotonic())
                call.response = _response_json(response)
                await self._record(call)
                return response
        return await super()._api(request)


@dataclass
class RecordingMetrics:
    sweeps: list[tuple[str, bool]] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    diagnoses: int = 0

    def sweep_done(self, account: str, ok: bool) -> None:
        self.sweeps.append((account, ok))

    def watch_post(self, kind: str) -> None:
        self.posts.append(kind)

    def diagnosis(self, report: Report) -> None:
        self.diagnoses += 1

    def diagnosis_failed(self) -> None:
        self.diagnoses += 1


@dataclass
class Rig:
    """What a watcher test needs: the sandbox, the fake Slack, the store, and a way to build watchers."""

    sandbox: Sandbox
    slack: RefusingSlack
    store: Store
    clients: AzureClients
    settings: Settings
    clock: list[datetime]

    def runs(self, source: str, scan: str) -> list[Json]:
        """The sandbox's live run list of a scan (newest first): insert at 0 to add a newer run."""
        runs: list[Json] = self.sandbox.world.purview[ACCOUNT].runs.setdefault(f"{source}/{scan}", [])
        return runs

    def add_run(self, source: str, scan: str, *, status: str, ended: datetime) -> Json:
        existing = self.runs(source, scan)
        run = make_run(existing[0] if existing else {}, status=status, ended=ended)
        existing.insert(0, run)
        return run

    def watcher(
        self,
        *,
        lookback: timedelta = timedelta(hours=1),
        interval: float = 300.0,
        deadline: float = 60.0,
        routes: list[Route] | None = None,
        metrics: RecordingMetrics | None = None,
        holder: str | None = None,
        alert_channel: str | None = CHANNEL,
        concurrency: int = 8,
        store: Store | None = None,
    ) -> Watcher:
        config = WatchConfig(
            accounts=(ACCOUNT,),
            interval_seconds=interval,
            lookback=lookback,
            deadline_seconds=deadline,
            holder=holder or f"test-{uuid.uuid4().hex[:8]}",
            concurrency=concurrency,
        )
        client = web_client(token=TOKEN, base_url=self.slack.url, counter=Metrics())
        return Watcher(
            config=config,
            store=store or self.store,
            purview=self.clients.purview,
            service=AzureDiagnosisService(self.clients, self.settings),
            publisher=WatchPublisher(client, ChannelPacer(interval=0.0)),
            router=Router(routes or [], alert_channel),
            metrics=metrics,
            clock=lambda: self.clock[0],
        )

    @property
    def scan_count(self) -> int:
        """How many scans the account has in the sandbox's world (what a sweep reads)."""
        account = self.sandbox.world.purview[ACCOUNT]
        return sum(len(account.scans.get(str(ds["name"]), [])) for ds in account.data_sources)

    def parents(self) -> list[Call]:
        """Top-level messages the watcher posted (failure and storm parents)."""
        return [c for c in self.slack.calls_to("chat.postMessage", ok=True) if not c.args.get("thread_ts")]

    def thread(self, parent: Call) -> list[Call]:
        return self.slack.thread(str(parent.args["channel"]), str(parent.response["ts"]))


RigFactory = Callable[..., contextlib.AbstractAsyncContextManager[Rig]]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RigFactory:
    """`async with rig(world=dict) as r:` the sandbox on `world` (default: the sample), a FakeSlack,
    a SQLite store in tmp_path and the Azure clients, all closed on exit."""

    @contextlib.asynccontextmanager
    async def start(world: dict[str, Any] | None = None) -> AsyncIterator[Rig]:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(factory, "RetrySettings", lambda: FAST_AZURE_RETRY)
        async with contextlib.AsyncExitStack() as stack:
            sandbox = await stack.enter_async_context(
                Sandbox(load_world(world or sample_world(), rebase_to=NOW))
            )
            slack = RefusingSlack()
            await stack.enter_async_context(slack)
            for name, value in sandbox.env().items():
                monkeypatch.setenv(name, value)
            settings = Settings()
            clients = await stack.enter_async_context(azure_clients(settings))
            store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'watch.db'}")
            stack.push_async_callback(store.close)
            yield Rig(sandbox, slack, store, clients, settings, [NOW])

    return start

"""`purview-bot`: the terminal and CI entry points. Exit 0 nothing fails, 1 a check fails, 2 usage/config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from rich.console import Console

from bot.azure import ConfigError, azure_clients
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.terminal import render
from checks.diagnose import NameNotFoundError
from checks.model import Report, Status
from handlers.render.blocks import report_payload

SAMPLE = "sample"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purview-bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log Azure calls to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="diagnose one data source")
    check.add_argument("source", help="the data source's name in Purview")
    check.add_argument("--account", help="Purview account (default: the first of PURVIEW_ACCOUNTS)")
    check.add_argument("--scan", help="only this scan of the source")
    check.add_argument("--format", choices=("text", "json", "blocks"), default="text")
    _sandbox_option(check)

    serve = sub.add_parser(
        "serve",
        help="the Slack bot: HTTP mode on $PORT (default 3000), or Socket Mode when SLACK_APP_TOKEN is set",
    )
    _sandbox_option(serve)

    watch = sub.add_parser(
        "watch",
        help="the scan-failure watcher alone: posts failed scans to PURVIEW_BOT_ALERT_CHANNEL / ROUTES",
    )
    watch.add_argument("--once", action="store_true", help="one sweep of each account, then exit")
    _sandbox_option(watch)

    demo = sub.add_parser(
        "demo", help="every source of the bundled sample tenant, served by the local sandbox"
    )
    demo.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _sandbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        nargs="?",
        const=SAMPLE,
        metavar="WORLD",
        help="read a local sandbox serving WORLD (a world YAML file; default: the sample tenant), not Azure",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        if args.command == "demo":
            return asyncio.run(run_demo(args.format))
        if args.command == "serve":
            return asyncio.run(run_serve(args.sandbox))
        if args.command == "watch":
            return asyncio.run(run_watcher(args.sandbox, once=args.once))
        return asyncio.run(run_check(args))
    except ConfigError as error:
        print(f"purview-bot: {error}", file=sys.stderr)
        return 2
    except NameNotFoundError as error:
        print(f"purview-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@asynccontextmanager
async def sandbox_env(world: str | None) -> AsyncIterator[None]:
    """Start the sandbox and point the ordinary settings at it (the product code does not know)."""
    if world is None:
        yield
        return
    from sandbox import Sandbox, load_world

    path = None if world == SAMPLE else Path(world)
    if path is not None and not path.is_file():
        raise ConfigError(f"--sandbox {world}: no such world file")
    async with Sandbox(load_world(path)) as sb:
        saved = dict(os.environ)
        os.environ.update(sb.env())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _account(settings: Settings, requested: str | None) -> str:
    if requested:
        return requested
    if not settings.accounts:
        raise ConfigError(
            "no Purview account configured: set PURVIEW_ACCOUNTS (comma-separated account names "
            "or ARM ids; the first is the default) or pass --account"
        )
    return settings.accounts[0]


async def run_check(args: argparse.Namespace) -> int:
    async with sandbox_env(args.sandbox):
        settings = Settings()
        account = _account(settings, args.account)
        async with azure_clients(settings) as clients:
            service = AzureDiagnosisService(clients, settings)
            report = await service.diagnose(args.source, account=account, scan=args.scan)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif args.format == "blocks":
        print(json.dumps(report_payload(report, scan=args.scan), indent=2))
    else:
        render(report, Console(highlight=False, soft_wrap=True))
    return 1 if report.status is Status.FAIL else 0


async def run_serve(world: str | None) -> int:
    """The Slack bot until SIGINT/SIGTERM; `--sandbox` reads the local sandbox instead of Azure."""
    from bot.server import run_socket_mode, serve_http_forever

    logging.getLogger().setLevel(logging.INFO)  # a service: its log is its only voice
    async with sandbox_env(world):
        settings = Settings()
        if settings.slack_app_token:
            await run_socket_mode(settings)
        else:
            await serve_http_forever(settings)
    return 0


async def run_watcher(world: str | None, *, once: bool) -> int:
    """`purview-bot watch`: sweeps until SIGINT/SIGTERM, or once with `--once`."""
    from bot.watch_main import run_watch

    logging.getLogger().setLevel(logging.INFO)  # "sweep of ACCOUNT: …" lines are its output
    async with sandbox_env(world):
        return await run_watch(Settings(), once=once)


async def run_demo(output: str) -> int:
    """Every data source of every account of the sample tenant, diagnosed concurrently, printed in order."""
    async with sandbox_env(SAMPLE):
        settings = Settings()
        _account(settings, None)  # a clear error when the sandbox configured no account
        async with azure_clients(settings) as clients:
            service = AzureDiagnosisService(clients, settings)  # bounds the diagnoses in flight

            async def account_reports(account: str) -> list[Report]:
                names = [str(ds["name"]) for ds in await service.data_sources(account)]
                return list(await asyncio.gather(*(service.diagnose(n, account=account) for n in names)))

            per_account = await asyncio.gather(*(account_reports(a) for a in settings.accounts))
    if output == "json":
        print(json.dumps([r.to_json() for reports in per_account for r in reports], indent=2))
        return 0
    console = Console(highlight=False, soft_wrap=True)
    for account, reports in zip(settings.accounts, per_account, strict=True):
        console.print(
            f"purview-bot demo: {len(reports)} data sources of Purview account {account} (sample tenant)\n",
            style="bold",
            markup=False,
        )
        for report in reports:
            render(report, console)
    return 0

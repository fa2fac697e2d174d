"""The watcher's sweep at scale: requests, time and memory per sweep of a large Purview account.

A generated world (default 1000 storage sources × 2 MSI scans, a few failing on distinct causes) served
by the sandbox with 50 ms added to every request; a SQLite store in a temp dir; the fake Slack. The
watcher runs as `python -m bot watch --once`, in its own process (so its peak RSS is its own), twice on
the same database: a first sweep that finds the failures, and a second one with no new failure.

Per sweep: wall time of the process and of the sweep's own traffic (first to last Purview request),
requests by kind (token, listing = data sources and scan lists, runs, diagnosis = everything else; the
diagnoses' own scan and run reads of a first sweep count as listing/runs), requests per scan, the most
requests in flight at once per Azure host, and the peak RSS (VmHWM). Targets for a sweep with
no new failure: ≤ 1 runs request per scan plus listing; time ≤ 1.3 × requests × latency ÷ concurrency;
RSS < 200 MB.

    .venv/bin/python bench/sweep.py [--sources 1000] [--scans 2] [--failing 8] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.slack helpers

from sandbox import RecordedRequest, Sandbox, load_world
from sandbox.generate import failing_runs, generated_world
from tests.slack.fake_slack import FakeSlack

TOKEN = "xoxb-bench"
CONCURRENCY = 8  # the contract's requests in flight per host (one host: the sandbox)
TIME_FACTOR = 1.3
RSS_LIMIT_MB = 200.0
_LISTING = re.compile(r"/scan/datasources(/[^/]+/scans)?/?$", re.I)
_RUNS = re.compile(r"/scans/[^/]+/runs/?$", re.I)


@dataclass
class Sweep:
    label: str
    wall: float
    traffic: float
    token: int
    listing: int
    runs: int
    diagnosis: int
    in_flight: int
    by_host: dict[str, int]
    rss_mb: float
    log: str
    code: int

    @property
    def polling(self) -> int:
        return self.listing + self.runs


def kind(req: RecordedRequest) -> str:
    if req.host_area == "token":
        return "token"
    if req.host_area == "purview" and _RUNS.search(req.path):
        return "runs"
    if req.host_area == "purview" and _LISTING.search(req.path):
        return "listing"
    return "diagnosis"


def in_flight_by_host(requests: list[RecordedRequest]) -> dict[str, int]:
    areas = sorted({r.host_area for r in requests})
    return {a: _peak([r for r in requests if r.host_area == a]) for a in areas}


def most_in_flight(requests: list[RecordedRequest]) -> int:
    """The most requests of one Azure host (Purview, ARM, …) in flight at one moment (arrival to answer).

    The sandbox serves every plane on one port; in Azure they are different hosts, and the contract's
    limit is per host, so requests are grouped by the host they stand for.
    """
    return max(in_flight_by_host(requests).values(), default=0)


def _peak(requests: list[RecordedRequest]) -> int:
    edges = sorted(
        [(r.started, 1) for r in requests] + [(r.started + r.duration, -1) for r in requests],
        key=lambda e: (e[0], e[1]),
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def vm_hwm_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.M)
    return int(found.group(1)) / 1024 if found else None


async def run_once(label: str, sb: Sandbox, env: dict[str, str], cwd: str) -> Sweep:
    sb.clear_requests()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "watch",
        "--once",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while proc.returncode is None:
            peak = max(peak, vm_hwm_mb(proc.pid) or 0.0)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    assert proc.stderr is not None
    err = await proc.stderr.read()
    code = await proc.wait()
    wall = time.monotonic() - started
    sampler.cancel()
    reqs = list(sb.requests)
    polling = [r for r in reqs if kind(r) in ("listing", "runs")]
    traffic = (
        max(r.started + r.duration for r in polling) - min(r.started for r in polling) if polling else 0.0
    )
    by_kind = {k: sum(1 for r in reqs if kind(r) == k) for k in ("token", "listing", "runs", "diagnosis")}
    return Sweep(
        label=label,
        wall=wall,
        traffic=traffic,
        in_flight=most_in_flight(reqs),
        by_host=in_flight_by_host(reqs),
        rss_mb=peak,
        log=err.decode("utf-8", "replace"),
        code=code,
        **by_kind,
    )


def report(sweeps: list[Sweep], scans: int, latency_ms: float) -> bool:
    """Print the table; True when the no-new-failure sweep meets every target."""
    print(
        f"\n{'sweep':<22}{'wall s':>8}{'sweep s':>9}{'bound s':>9}{'ratio':>7}{'token':>7}{'listing':>9}"
        f"{'runs':>7}{'diag':>7}{'runs/scan':>11}{'req/scan':>10}{'inflight/host':>14}{'RSS MB':>8}"
    )
    ok = True
    for s in sweeps:
        bound = TIME_FACTOR * s.polling * latency_ms / 1000 / CONCURRENCY
        ideal = s.polling * latency_ms / 1000 / CONCURRENCY
        ratio = s.traffic / ideal if ideal else 0.0
        print(
            f"{s.label:<22}{s.wall:>8.2f}{s.traffic:>9.2f}{bound:>9.2f}{ratio:>7.2f}"
            f"{s.token:>7}{s.listing:>9}{s.runs:>7}{s.diagnosis:>7}{s.runs / scans:>11.3f}"
            f"{(s.polling + s.diagnosis) / scans:>10.3f}{s.in_flight:>14}{s.rss_mb:>8.1f}"
        )
    for s in sweeps:
        print(f"  {s.label}: most in flight per host: {s.by_host}")
    quiet = sweeps[-1]
    checks = {
        f"≤ 1 runs request per scan ({quiet.runs}/{scans})": quiet.runs <= scans,
        "no diagnosis traffic without a new failure": quiet.diagnosis == 0,
        f"sweep within {TIME_FACTOR} × requests × latency ÷ {CONCURRENCY}": quiet.traffic
        <= TIME_FACTOR * quiet.polling * latency_ms / 1000 / CONCURRENCY,
        f"at most {CONCURRENCY} requests in flight per host": quiet.in_flight <= CONCURRENCY,
        f"peak RSS < {RSS_LIMIT_MB:g} MB (both sweeps)": all(s.rss_mb < RSS_LIMIT_MB for s in sweeps),
    }
    print(
        f"\ntargets (second sweep, no new failure; ratio = sweep s ÷ (requests × latency ÷ {CONCURRENCY})):"
    )
    for what, good in checks.items():
        print(f"  {'PASS' if good else 'FAIL'}  {what}")
        ok &= good
    return ok


async def main(args: argparse.Namespace) -> int:
    world = generated_world(args.sources, args.scans, args.failing, seed=args.seed)
    scans = args.sources * args.scans
    failing = failing_runs(world)
    # each failing source routed to its own channel: Slack's ~1 message/s/channel pacing stays out of it
    sources = sorted({key.split("/")[0] for key in failing.values()})
    routes = [{"channel": f"C0BENCH{i:03d}", "source": s} for i, s in enumerate(sources)]
    print(
        f"world: {args.sources} sources × {args.scans} scans = {scans} scans, {len(failing)} failing; "
        f"sandbox latency {args.latency_ms:g} ms; watcher concurrency {CONCURRENCY}"
    )
    with tempfile.TemporaryDirectory(prefix="purview-bot-bench-") as workdir:
        async with Sandbox(load_world(world), latency_ms=args.latency_ms) as sb, FakeSlack() as slack:
            base = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AZURE_", "PURVIEW_", "SLACK_", "SSL_CERT"))
            }
            env = {
                **base,
                **sb.env(),
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_API_URL": slack.url,
                "PURVIEW_BOT_ALERT_CHANNEL": "C0BENCH",
                "PURVIEW_BOT_ROUTES": json.dumps(routes),
                "PURVIEW_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}",
                "PURVIEW_BOT_WATCH_INTERVAL": "300",
                "PYTHONUNBUFFERED": "1",
            }
            sweeps = []
            for label in ("first (new failures)", "second (none new)"):
                sweep = await run_once(label, sb, env, workdir)
                sweeps.append(sweep)
                lines = [ln for ln in sweep.log.splitlines() if "sweep of" in ln]
                print(f"{label}: exit {sweep.code}; {lines[-1] if lines else 'no sweep line in the log'}")
                if sweep.code != 0:
                    print(sweep.log[-3000:], file=sys.stderr)
            posts = [c for c in slack.calls_to("chat.postMessage", ok=True) if not c.args.get("thread_ts")]
            print(f"Slack: {len(posts)} parent posts, {len(slack.calls_to('chat.postMessage'))} posts in all")
    return 0 if report(sweeps, scans, args.latency_ms) and all(s.code == 0 for s in sweeps) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--scans", type=int, default=2, help="scans per source")
    parser.add_argument("--failing", type=int, default=8, help="scans failing (distinct causes)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))

"""`python -m sandbox`: prints the export lines of env() and serves until terminated."""

from __future__ import annotations

import asyncio
import signal
import sys

from tests.sandbox.conftest import REPO, WORLD_FILE


async def test_standalone_prints_exports_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", str(WORLD_FILE), "--latency-ms", "1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip() for _ in range(11)]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    assert all(line.startswith("export ") for line in lines)
    assert exports["AZURE_AUTHORITY_HOST"].startswith("https://127.0.0.1:")
    assert exports["PURVIEW_ACCOUNTS"] == "contoso-pv"
    assert exports["PURVIEW_BOT_PURVIEW_ENDPOINT"].endswith("/purview/{account}'")  # shell-quoted
    assert code == 0


async def test_bad_world_exits_2(tmp_path: object) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "/nonexistent/world.yaml",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"cannot load the world" in err

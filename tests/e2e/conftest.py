"""End-to-end fixtures: the sandbox on the sample tenant, and the real CLI run as a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox import Sandbox, load_world


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def run_cli(*args: str, env: dict[str, str] | None = None, limit_s: float = 120) -> CliResult:
    """`python -m bot ARGS` in a child process: the product reads only its ordinary settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PURVIEW_", "SSL_CERT"))}
    base["AZURE_TOKEN_CREDENTIALS"] = "EnvironmentCredential"  # never probe a metadata endpoint in tests
    base["NO_COLOR"] = "1"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    return CliResult(proc.returncode or 0, out.decode(), err.decode())


@pytest.fixture
async def sample_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(load_world(None)) as sb:
        yield sb

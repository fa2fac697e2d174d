"""A PostgreSQL of the test's own (initdb + pg_ctl in a temp dir, on a free loopback port), which a test
stops and starts at will, and a TCP server that accepts connections and never answers. Never the
machine's PostgreSQL service.

PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user (`runuser`), in a
directory that user owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class OwnPostgres:
    """`async with OwnPostgres.created() as pg:` a fresh cluster, stopped; `await pg.start()` / `stop()`."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = free_port()
        self.data = root / "data"
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    @contextlib.asynccontextmanager
    async def created(cls) -> AsyncIterator[OwnPostgres]:
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        root = Path(tempfile.mkdtemp(prefix="pvb-own-pg-"))
        pg = cls(root, bin_dir)
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(root, user.pw_uid, user.pw_gid)
            await pg._run(
                "initdb", "-D", str(pg.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
            )
            yield pg
        finally:
            if pg.running:
                with contextlib.suppress(Exception):
                    await pg._run("pg_ctl", "-D", str(pg.data), "-m", "immediate", "-w", "stop")
            shutil.rmtree(root, ignore_errors=True)

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        await self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "30", "start")
        self.running = True

    async def stop(self) -> None:
        """A fast shutdown: sessions are ended, as when the database is restarted or fails over."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        self.running = False

    async def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=self.root
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {out.decode(errors='replace')[-2000:]}")


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A loopback TCP server that accepts every connection and never sends a byte; yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open, never answered

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()

"""Each store test runs on SQLite (a file in tmp_path) and on PostgreSQL (a fresh database per test).

PostgreSQL: `PURVIEW_BOT_TEST_POSTGRES` (default `postgresql://postgres@127.0.0.1:5432/postgres`) is the
maintenance database the tests connect to in order to create `pvb_test_<random>` and drop it afterwards.
When it does not answer the PostgreSQL variants are skipped with the reason, unless
`PURVIEW_BOT_TEST_REQUIRE_POSTGRES=1` (CI with PostgreSQL started), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.store import SqlStore

ADMIN_DSN = os.environ.get("PURVIEW_BOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("PURVIEW_BOT_TEST_REQUIRE_POSTGRES", "") not in ("", "0", "false")


async def _probe(dsn: str) -> str | None:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The maintenance DSN, once PostgreSQL has answered; skips (or fails, in CI) when it does not."""
    problem = asyncio.run(_probe(ADMIN_DSN))
    if problem is not None:
        message = f"PostgreSQL not reachable at {ADMIN_DSN} ({problem}); set PURVIEW_BOT_TEST_POSTGRES"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return ADMIN_DSN


@pytest.fixture
async def postgres_url(postgres_admin: str) -> AsyncIterator[str]:
    name = f"pvb_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(postgres_admin).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(postgres_admin)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database's URL, on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()

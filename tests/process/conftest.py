"""Fixtures for the process-level tests: a database URL per test (SQLite file, or a fresh PostgreSQL db).

PostgreSQL is 127.0.0.1:5432 with trust auth for user `postgres` (override with PURVIEW_TEST_PG_DSN); each
test gets its own database, dropped afterwards, so replicas and restarts never see another test's claims.
When the server is unreachable the PostgreSQL cases skip, saying so, instead of failing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

PG_DSN = os.environ.get("PURVIEW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN} ({type(exc).__name__}: {exc})")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """`postgresql+asyncpg://…/pvtest_<hex>`, created now and dropped (connections forced out) after."""
    name = f"pvtest_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test using it runs twice: on a SQLite file, and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'watch.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url

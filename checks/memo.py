"""A per-diagnosis memo: each distinct lookup runs once, however many checks ask, even at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        """Await the one shared task for `key`; its result (or its exception) is shared by every caller."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._tasks[key] = task
        # shield: a caller timing out must not cancel the lookup other checks are waiting on
        result: T = await asyncio.shield(task)
        return result

    def keys(self) -> list[Hashable]:
        return list(self._tasks)

    def cancel(self) -> None:
        for task in self._tasks.values():
            if not task.done():
                task.cancel()

"""`/purview-check watch | unwatch | watches`: which channel gets the automatic posts of which scope.

A watch is a route kept in the store (`handlers.store.Watch`), read by the watcher's router beside
`PURVIEW_BOT_ROUTES`: the most specific match wins (source > collection > account). Watches name the
account by its name (routes match names, not ARM ids) and the source as Purview spells it. Every answer is
ephemeral mrkdwn with every name escaped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError, closest
from handlers.ports import Store, Watch
from handlers.render.escape import code
from handlers.render.texts import not_found_text
from handlers.slack.deps import Deps
from handlers.slack.parse import COMMAND, WatchScope

log = logging.getLogger(__name__)

STORE_SECONDS = 10.0
MAX_LISTED = 50
NO_STORE = (
    "Watches are kept in purview-bot's database, which it could not open (`PURVIEW_BOT_DATABASE_URL`; "
    "the bot's log says why). Reports still work."
)
_CHANNEL_ID = re.compile(r"^[CDG][A-Z0-9]{2,30}$")


def scope_text(account: str, collection: str | None, source: str | None) -> str:
    """`data source `hr-sql` in `contoso-pv``, `collection …`, `every data source in …` (escaped)."""
    where = code(AccountRef(account).name)
    if source:
        return f"data source {code(source)} in {where}"
    if collection:
        return f"collection {code(collection)} in {where}"
    return f"every data source in {where}"


def watch_text(watch: Watch) -> str:
    return scope_text(watch.account, watch.collection, watch.source)


def channel_ref(channel: str) -> str:
    """A channel as Slack shows it (`<#C123>`) when it is an id, else as code."""
    return f"<#{channel}>" if _CHANNEL_ID.match(channel) else code(channel)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def same_scope(watch: Watch, account: str, collection: str | None, source: str | None) -> bool:
    """Same account, collection and source, ignoring case (as the router matches them)."""
    return (
        _same(watch.account, AccountRef(account).name)
        and _same(watch.collection, collection)
        and _same(watch.source, source)
    )


async def _watches(store: Store) -> list[Watch]:
    async with asyncio.timeout(STORE_SECONDS):
        return await store.watches()


class WatchCommands:
    """The three sub-commands, after the ack (the channel allow-list and the account already decided)."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def add(self, scope: WatchScope, account: str, channel: str) -> str:
        """Add a watch of `scope` (ACCOUNT resolved to `account`) for `channel`; the answer's text."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        collection, source = scope.collection, scope.source
        note = ""
        if source is not None:
            try:
                source = await self._deps.runner.resolve_source(source, account)
            except NameNotFoundError as error:
                return not_found_text(error)
        elif collection is not None:
            collection, note = await self._collection(collection, account)
        watches = await _watches(store)
        if any(w.channel == channel and same_scope(w, account, collection, source) for w in watches):
            return f"This channel already watches {scope_text(account, collection, source)}."
        watch = Watch(channel, AccountRef(account).name, collection, source)
        async with asyncio.timeout(STORE_SECONDS):
            await store.add_watch(watch)
        log.info("watch added: %s", watch)
        lines = [f"This channel now gets the automatic posts for failed scans of {watch_text(watch)}."]
        others = [
            w.channel for w in watches if w.channel != channel and same_scope(w, account, collection, source)
        ]
        if others:
            refs = ", ".join(channel_ref(c) for c in others)
            lines.append(
                f"Also watched from {refs}: each failure is posted in one channel only (on a tie, a route "
                "from `PURVIEW_BOT_ROUTES` wins, then one of the watching channels)."
            )
        lines.append(
            "A more specific watch or route still takes its scans (a source before a collection before "
            f"an account). `{COMMAND} unwatch` with the same words undoes it."
        )
        if note:
            lines.append(note)
        return "\n".join(lines)

    async def remove(self, scope: WatchScope, account: str, channel: str) -> str:
        """Remove this channel's watch of `scope`; names need not exist in Purview any more."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        mine = [w for w in await _watches(store) if w.channel == channel]
        found = [w for w in mine if same_scope(w, account, scope.collection, scope.source)]
        if not found:
            text = f"This channel does not watch {scope_text(account, scope.collection, scope.source)}."
            if account not in self._deps.service.accounts:  # as typed: not a configured account
                names = ", ".join(code(AccountRef(a).name) for a in self._deps.service.accounts)
                text += f" The accounts here are: {names}."
            return f"{text}\n{self._listing(mine)}"
        async with asyncio.timeout(STORE_SECONDS):
            for watch in found:
                await store.remove_watch(watch)
        log.info("watch removed: %s", found)
        return f"This channel no longer watches {watch_text(found[0])}."

    async def show(self, channel: str) -> str:
        """This channel's watches."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        return self._listing([w for w in await _watches(store) if w.channel == channel])

    @staticmethod
    def _listing(watches: Sequence[Watch]) -> str:
        if not watches:
            return (
                "This channel watches nothing: it gets automatic posts only through `PURVIEW_BOT_ROUTES` "
                f"or `PURVIEW_BOT_ALERT_CHANNEL`. `{COMMAND} watch [ACCOUNT] [--collection NAME | --source "
                "NAME]` adds a watch."
            )
        lines = ["*This channel gets the automatic posts for failed scans of*"]
        lines += [f"• {watch_text(w)}" for w in watches[:MAX_LISTED]]
        if len(watches) > MAX_LISTED:
            lines.append(f"…and {len(watches) - MAX_LISTED} more")
        return "\n".join(lines)

    async def _collection(self, collection: str, account: str) -> tuple[str, str]:
        """The collection as Purview spells it, and a note when no data source is in it (yet): the watch
        is kept, as sources may be registered there later, but a typo should not go unnoticed."""
        try:
            sources = await self._deps.service.data_sources(account)
        except Exception as error:
            log.warning("listing data sources of %s failed: %s", AccountRef(account).name, error)
            return collection, ""
        names = sorted(
            {
                str(ref)
                for s in sources
                if (ref := ((s.get("properties") or {}).get("collection") or {}).get("referenceName"))
            }
        )
        for name in names:
            if name.lower() == collection.lower():
                return name, ""
        suggestions = closest(collection, names) or names[:5]
        hint = f" Collections with data sources: {', '.join(code(n) for n in suggestions)}." if names else ""
        return collection, (
            f"Note: no data source is in collection {code(collection)} yet; the watch takes effect when one "
            f"is registered there.{hint}"
        )

"""`/purview-check watch | unwatch | watches`: which channels get the automatic posts of which scope.

A watch is kept in the store (`handlers.ports.Watch`) and read by the watcher's router beside
`PURVIEW_BOT_ROUTES`: the configured routes decide the on-call channel of a scan, and a watch only adds a
channel (handlers.watch.routing), so nobody can take the posts away from on-call. Every watch is visible
to everyone (`watches --all`); a channel removes its own, and another channel's watch is removed from the
on-call channel of its scope (its routed channel, or `PURVIEW_BOT_ALERT_CHANNEL`) or by a member of
`PURVIEW_BOT_ADMIN_USERGROUP`. A direct message cannot hold a watch. Watches name the account by its name
(routes match names, not ARM ids) and the source as Purview spells it. Every answer is ephemeral mrkdwn
with every name escaped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError, closest
from handlers.ports import Mute, Store, StoreUnavailable, Watch
from handlers.render.escape import code
from handlers.render.texts import not_found_text
from handlers.render.watch_posts import slack_date
from handlers.slack.access import Access
from handlers.slack.deps import Deps
from handlers.slack.parse import COMMAND, MuteSource, RemoveWatch, UnmuteSource, WatchScope
from handlers.watch.routing import Place, WatchPolicy, is_direct_message

log = logging.getLogger(__name__)

STORE_SECONDS = 10.0
MAX_LISTED = 50
NO_STORE = (
    "Watches are kept in purview-bot's database, which it could not open just now "
    "(`PURVIEW_BOT_DATABASE_URL`; it keeps trying, and its log and `/healthz` say why). Reports still work."
)
NO_DIRECT_MESSAGE = (
    "A direct message cannot hold a watch: automatic posts go to channels, where on-call sees them. Run "
    f"`{COMMAND} watch` in a channel (invite the bot there first if it is private)."
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


def _quoted(name: str) -> str:
    return f'"{name}"' if any(c.isspace() for c in name) else name


def unwatch_command(watch: Watch) -> str:
    """The exact command that removes `watch` (from the on-call channel, or as an admin), as code."""
    words = [COMMAND, "unwatch", _quoted(watch.account)]
    if watch.source:
        words += ["--source", _quoted(watch.source)]
    elif watch.collection:
        words += ["--collection", _quoted(watch.collection)]
    words += ["--channel", watch.channel]
    return code(" ".join(words))


async def _watches(store: Store) -> list[Watch]:
    async with asyncio.timeout(STORE_SECONDS):
        return await store.watches()


class WatchCommands:
    """The three sub-commands, after the ack (the channel allow-list and the account already decided).

    `policy` says who else than the channel itself may remove a watch (the composition root's routes,
    alert channel and admin user group)."""

    def __init__(self, deps: Deps, policy: WatchPolicy | None = None) -> None:
        self._deps = deps
        self._policy = policy or WatchPolicy()
        # members of the admin user group, looked up (and cached) like the allowed user group
        self._admins = Access(frozenset(), self._policy.admin_usergroup)

    async def add(self, scope: WatchScope, account: str, channel: str) -> str:
        """Add a watch of `scope` (ACCOUNT resolved to `account`) for `channel`; the answer's text."""
        if is_direct_message(channel):
            return NO_DIRECT_MESSAGE
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
        try:
            watches = await _watches(store)
            if any(w.channel == channel and same_scope(w, account, collection, source) for w in watches):
                return f"This channel already watches {scope_text(account, collection, source)}."
            watch = Watch(channel, AccountRef(account).name, collection, source)
            async with asyncio.timeout(STORE_SECONDS):
                await store.add_watch(watch)
        except StoreUnavailable:
            return NO_STORE
        log.info("watch added: %s", watch)
        routed = self._policy.router.routed(Place(watch.account, collection, source))
        also = f" (the on-call channel {channel_ref(routed)} still gets them too)" if routed else ""
        if routed == channel:
            also = " (it gets them already as the on-call channel)"
        lines = [f"This channel now gets the automatic posts for failed scans of {watch_text(watch)}{also}."]
        others = [
            w.channel for w in watches if w.channel != channel and same_scope(w, account, collection, source)
        ]
        if others:
            lines.append(
                f"Also watched from {', '.join(channel_ref(c) for c in others)}: each gets its own post."
            )
        lines.append(
            f"`{COMMAND} unwatch` with the same words undoes it; `{COMMAND} watches --all` lists every "
            "channel's watches."
        )
        if note:
            lines.append(note)
        return "\n".join(lines)

    async def remove(self, scope: WatchScope, account: str, channel: str, user: str | None = None) -> str:
        """Remove the watch of `scope` of this channel, or of the channel `scope` names (`--channel`):
        from the on-call channel of the watch's scope, or by an admin. Names need not exist in Purview
        any more (a watch of a deleted source can be removed)."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        target = scope.channel if isinstance(scope, RemoveWatch) and scope.channel else channel
        whose = "This channel" if target == channel else channel_ref(target)
        try:
            theirs = [w for w in await _watches(store) if w.channel == target]
            found = [w for w in theirs if same_scope(w, account, scope.collection, scope.source)]
            if not found:
                text = f"{whose} does not watch {scope_text(account, scope.collection, scope.source)}."
                if account not in self._deps.service.accounts:  # as typed: not a configured account
                    names = ", ".join(code(AccountRef(a).name) for a in self._deps.service.accounts)
                    text += f" The accounts here are: {names}."
                return f"{text}\n{self._listing(theirs, whose)}"
            if target != channel:
                refusal = await self._refusal(found[0], channel, user)
                if refusal is not None:
                    return refusal
            async with asyncio.timeout(STORE_SECONDS):
                for watch in found:
                    await store.remove_watch(watch)
        except StoreUnavailable:
            return NO_STORE
        log.info("watch removed from %s by user %s in %s: %s", target, user, channel, found)
        return f"{whose} no longer watches {watch_text(found[0])}."

    async def show(self, channel: str, every: bool = False) -> str:
        """This channel's watches, or every channel's (each with the command that removes it)."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        try:
            watches = await _watches(store)
        except StoreUnavailable:
            return NO_STORE
        if every:
            return self._everyone(watches)
        return self._listing([w for w in watches if w.channel == channel], "This channel")

    async def mute(self, work: MuteSource, account: str, channel: str, user: str | None) -> str:
        """Hold back the automatic failure posts of a source until now + the duration (recorded, not
        posted): from the source's on-call channel or by an admin, as muting takes posts from on-call."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        try:
            source = await self._deps.runner.resolve_source(work.source, account)
        except NameNotFoundError as error:
            return not_found_text(error)
        name = AccountRef(account).name
        refusal = await self._mute_refusal(Watch(channel, name, None, source), channel, user, "mute")
        if refusal is not None:
            return refusal
        until = datetime.now(UTC) + timedelta(seconds=work.seconds)
        try:
            async with asyncio.timeout(STORE_SECONDS):
                await store.mute(Mute(name, source, until, user))
        except StoreUnavailable:
            return NO_STORE
        log.warning("source %s in %s muted until %s by user %s in %s", source, name, until, user, channel)
        return (
            f"Muted: failures of {code(source)} in {code(name)} are recorded, not posted, until "
            f"{slack_date(until)}. Recoveries are still posted. `{COMMAND} unmute {_quoted(source)}` ends it."
        )

    async def unmute(self, work: UnmuteSource, account: str, channel: str, user: str | None) -> str:
        """End a mute (the names need not exist in Purview any more)."""
        store = self._deps.store
        if store is None:
            return NO_STORE
        name = AccountRef(account).name
        try:
            async with asyncio.timeout(STORE_SECONDS):
                mutes = [m for m in await store.mutes(name) if m.source.lower() == work.source.lower()]
            if not mutes:
                return f"{code(work.source)} in {code(name)} is not muted."
            refusal = await self._mute_refusal(
                Watch(channel, name, None, mutes[0].source), channel, user, "unmute"
            )
            if refusal is not None:
                return refusal
            async with asyncio.timeout(STORE_SECONDS):
                await store.unmute(name, mutes[0].source)
        except StoreUnavailable:
            return NO_STORE
        log.warning("source %s in %s unmuted by user %s in %s", mutes[0].source, name, user, channel)
        return f"Unmuted: failures of {code(mutes[0].source)} in {code(name)} are posted again."

    async def _mute_refusal(self, scope: Watch, channel: str, user: str | None, verb: str) -> str | None:
        """None when `channel` (or `user`) may (un)mute the source of `scope`: its on-call channel, an
        admin, or anyone when no on-call channel is configured for it."""
        place = Place(scope.account, await self._collection_of(scope), scope.source)
        on_call = self._policy.router.on_call(place)
        if not on_call or channel in on_call:
            return None
        group = self._policy.admin_usergroup
        if group and user and await self._admins.user_refusal(self._deps.client, user) is None:
            return None
        where = ", ".join(channel_ref(c) for c in sorted(on_call))
        admins = " or a member of the admin user group" if group else ""
        return f"Only the on-call channel of {code(scope.source or '')} ({where}){admins} can {verb} it."

    async def _refusal(self, watch: Watch, channel: str, user: str | None) -> str | None:
        """None when `channel` (or `user`) may remove another channel's `watch`; else why not."""
        place = Place(watch.account, watch.collection, watch.source)
        if watch.source and not watch.collection:
            place = Place(watch.account, await self._collection_of(watch), watch.source)
        on_call = self._policy.router.on_call(place)
        if channel in on_call:
            return None
        group = self._policy.admin_usergroup
        if group and user and await self._admins.user_refusal(self._deps.client, user) is None:
            return None
        where = ", ".join(channel_ref(c) for c in sorted(on_call)) or "none is configured"
        admins = " or a member of the admin user group" if group else ""
        return (
            f"Only {channel_ref(watch.channel)} itself, the on-call channel of {watch_text(watch)} ({where})"
            f"{admins} can remove that watch."
        )

    async def _collection_of(self, watch: Watch) -> str | None:
        """The collection of a watched source (a collection's route may make a channel its on-call)."""
        try:
            sources = await self._deps.service.data_sources(watch.account)
        except Exception as error:
            log.warning("listing data sources of %s failed: %s", watch.account, error)
            return None
        for source in sources:
            if str(source.get("name") or "").lower() == (watch.source or "").lower():
                reference = ((source.get("properties") or {}).get("collection") or {}).get("referenceName")
                return str(reference) if reference else None
        return None

    @staticmethod
    def _listing(watches: Sequence[Watch], whose: str) -> str:
        if not watches:
            return (
                f"{whose} watches nothing: it gets automatic posts only through `PURVIEW_BOT_ROUTES` "
                f"or `PURVIEW_BOT_ALERT_CHANNEL`. `{COMMAND} watch [ACCOUNT] [--collection NAME | --source "
                "NAME]` adds a watch."
            )
        lines = [f"*{whose} gets the automatic posts for failed scans of*"]
        lines += [f"• {watch_text(w)}" for w in watches[:MAX_LISTED]]
        if len(watches) > MAX_LISTED:
            lines.append(f"…and {len(watches) - MAX_LISTED} more")
        return "\n".join(lines)

    @staticmethod
    def _everyone(watches: Sequence[Watch]) -> str:
        if not watches:
            return (
                "No channel watches anything: the automatic posts go where `PURVIEW_BOT_ROUTES` and "
                "`PURVIEW_BOT_ALERT_CHANNEL` send them."
            )
        lines = [
            f"*Every channel's watches ({len(watches)})*: each channel gets the posts as well as the "
            "on-call channel. The on-call channel of a scope, or an admin, removes a watch with the "
            "command shown."
        ]
        for w in watches[:MAX_LISTED]:
            dm = " (a direct message: never posted to)" if is_direct_message(w.channel) else ""
            lines.append(
                f"• {channel_ref(w.channel)} {code(w.channel)}{dm}: {watch_text(w)} · {unwatch_command(w)}"
            )
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

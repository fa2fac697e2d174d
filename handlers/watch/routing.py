"""Which Slack channels an automatic post goes to, for a scan of (account, collection, source).

The configured routes decide the *routed* channel, the on-call one: `PURVIEW_BOT_ROUTES` (JSON, or the
path of a JSON file), the most specific matching route winning (source > collection > account, the first
on a tie), else `PURVIEW_BOT_ALERT_CHANNEL`. The store's watches (`/purview-check watch`) only ever add
channels: a failure goes to the routed channel and to every channel whose watch matches it, one parent
per channel. A watch never takes a failure away from the routed channel, and a direct message never
holds one. A route names what it requires: `{"channel": "C2", "source": "hr-sql"}` matches hr-sql in any
account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checks.accounts import AccountRef
from handlers.ports import Watch

_KEYS = frozenset({"channel", "account", "collection", "source", "mention"})
_USERGROUP = re.compile(r"^S[A-Z0-9]{2,30}$")


class RoutesError(ValueError):
    """`PURVIEW_BOT_ROUTES` cannot be read; the message says which entry and why."""


@dataclass(frozen=True)
class Route:
    channel: str
    account: str | None = None
    collection: str | None = None
    source: str | None = None
    mention: str | None = None  # a Slack user group id (`S…`) named on new failures of this route

    @property
    def specificity(self) -> int:
        """source > collection > account > nothing: a bit each, so a source route beats any other."""
        return 4 * bool(self.source) + 2 * bool(self.collection) + bool(self.account)

    def matches(self, account: str, collection: str | None, source: str | None) -> bool:
        return (
            _same(self.account, AccountRef(account).name)
            and _same(self.collection, collection)
            and _same(self.source, source)
        )


@dataclass(frozen=True)
class Place:
    """Where a scan lives: what a route can match on. (A watch's scope is a place too: an account, or a
    collection or a source of it, the rest None.)"""

    account: str
    collection: str | None
    source: str | None


def _same(wanted: str | None, actual: str | None) -> bool:
    return wanted is None or (actual is not None and wanted.lower() == actual.lower())


def parse_routes(value: str | None) -> list[Route]:
    """`PURVIEW_BOT_ROUTES`: a JSON list, or the path of a file holding one; empty or unset = no routes."""
    text = (value or "").strip()
    if not text:
        return []
    if not text.startswith("["):
        path = Path(text)
        if not path.is_file():
            raise RoutesError(f"PURVIEW_BOT_ROUTES: neither a JSON list nor a readable file: {text[:200]}")
        text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise RoutesError(f"PURVIEW_BOT_ROUTES: not JSON ({error})") from None
    if not isinstance(raw, list):
        raise RoutesError("PURVIEW_BOT_ROUTES: expected a JSON list of routes")
    return [_route(item, index) for index, item in enumerate(raw)]


def _route(item: object, index: int) -> Route:
    where = f"PURVIEW_BOT_ROUTES[{index}]"
    if not isinstance(item, dict):
        raise RoutesError(f"{where}: expected an object with a channel")
    unknown = set(item) - _KEYS
    if unknown:
        raise RoutesError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    fields: dict[str, str | None] = {}
    for key in _KEYS:
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise RoutesError(f"{where}: {key!r} must be a non-empty string")
        fields[key] = value.strip() if isinstance(value, str) else None
    channel = fields.pop("channel")
    if channel is None:
        raise RoutesError(f"{where}: 'channel' is required")
    mention = fields.get("mention")
    if mention is not None and not _USERGROUP.match(mention):
        raise RoutesError(f"{where}: 'mention' must be a Slack user group id (S…), not {mention[:40]!r}")
    return Route(channel=channel, **fields)


def is_direct_message(channel: str) -> bool:
    """A direct message's id (`D…`): it cannot hold a watch (one person's inbox is not on-call)."""
    return channel.upper().startswith("D")


def watch_routes(watches: Iterable[Watch]) -> list[Route]:
    return [
        Route(w.channel, w.account, w.collection, w.source)
        for w in watches
        if not is_direct_message(w.channel)
    ]


class Router:
    """The channels of a place; the store's watches are passed per call (read once per sweep)."""

    def __init__(self, routes: Sequence[Route], default_channel: str | None) -> None:
        self._routes = list(routes)
        self._default = default_channel or None

    @property
    def configured(self) -> bool:
        """Whether any channel is configured at all (the store's watches aside)."""
        return bool(self._routes or self._default)

    @property
    def default_channel(self) -> str | None:
        """`PURVIEW_BOT_ALERT_CHANNEL`."""
        return self._default

    def routed(self, place: Place) -> str | None:
        """The on-call channel of a place: the most specific matching configured route's channel (the
        first on a tie), else the default alert channel, else None. Watches play no part."""
        best = self._best(place)
        return best.channel if best is not None else self._default

    def mention(self, place: Place) -> str | None:
        """The user group the place's route names (to mention on a new failure in its channel)."""
        best = self._best(place)
        return best.mention if best is not None else None

    def _best(self, place: Place) -> Route | None:
        best: Route | None = None
        for route in self._routes:
            if route.matches(place.account, place.collection, place.source) and (
                best is None or route.specificity > best.specificity
            ):
                best = route
        return best

    def channels(self, place: Place, watches: Sequence[Watch] = ()) -> list[str]:
        """Every channel a failure of `place` goes to: the routed one first, then each channel whose
        watch matches (in the store's order), each once. Empty when nothing is routed or watching."""
        found: list[str] = []
        routed = self.routed(place)
        if routed is not None:
            found.append(routed)
        for route in watch_routes(watches):
            if route.channel not in found and route.matches(place.account, place.collection, place.source):
                found.append(route.channel)
        return found

    def fallback(self, place: Place) -> str | None:
        """Where a post that a channel refuses (archived, not found, bot removed) goes instead: the
        default alert channel, else the place's routed channel."""
        return self._default or self.routed(place)

    def on_call(self, place: Place) -> set[str]:
        """The channels that may remove any channel's watch of `place`: its routed channel and the
        default alert channel."""
        return {c for c in (self.routed(place), self._default) if c}


@dataclass(frozen=True)
class WatchPolicy:
    """Who may remove a watch of another channel (`/purview-check unwatch … --channel C…`): from the
    on-call channel of the watch's scope (its routed channel, or the alert channel), or a member of the
    admin user group (`PURVIEW_BOT_ADMIN_USERGROUP`). Any channel may remove its own watches."""

    router: Router = field(default_factory=lambda: Router([], None))
    admin_usergroup: str | None = None

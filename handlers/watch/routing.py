"""Which Slack channel an automatic post goes to, for a scan of (account, collection, source).

Routes come from `PURVIEW_BOT_ROUTES` (JSON, or the path of a JSON file) and from the store's watches;
the most specific matching route wins (source > collection > account), the configured routes before the
watches on a tie, and `PURVIEW_BOT_ALERT_CHANNEL` catches the rest. A route names what it requires:
`{"channel": "C2", "source": "hr-sql"}` matches hr-sql in any account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from checks.accounts import AccountRef
from handlers.ports import Watch

_KEYS = frozenset({"channel", "account", "collection", "source"})


class RoutesError(ValueError):
    """`PURVIEW_BOT_ROUTES` cannot be read; the message says which entry and why."""


@dataclass(frozen=True)
class Route:
    channel: str
    account: str | None = None
    collection: str | None = None
    source: str | None = None

    @property
    def specificity(self) -> int:
        """source > collection > account > nothing: a bit each, so a source route beats any other."""
        return 4 * bool(self.source) + 2 * bool(self.collection) + bool(self.account)

    def matches(self, account: str, collection: str | None, source: str) -> bool:
        return (
            _same(self.account, AccountRef(account).name)
            and _same(self.collection, collection)
            and _same(self.source, source)
        )


@dataclass(frozen=True)
class Place:
    """Where a scan lives: what a route can match on."""

    account: str
    collection: str | None
    source: str


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
    return Route(channel=channel, **fields)


def watch_routes(watches: Iterable[Watch]) -> list[Route]:
    return [Route(w.channel, w.account, w.collection, w.source) for w in watches]


class Router:
    """The channel for a place; the store's watches are passed per call (read once per sweep)."""

    def __init__(self, routes: Sequence[Route], default_channel: str | None) -> None:
        self._routes = list(routes)
        self._default = default_channel or None

    @property
    def configured(self) -> bool:
        """Whether any channel is configured at all (the store's watches aside)."""
        return bool(self._routes or self._default)

    def channel(self, place: Place, watches: Sequence[Watch] = ()) -> str | None:
        """The most specific matching route's channel (first on a tie), else the default, else None."""
        best: Route | None = None
        for route in [*self._routes, *watch_routes(watches)]:
            if route.matches(place.account, place.collection, place.source) and (
                best is None or route.specificity > best.specificity
            ):
                best = route
        return best.channel if best is not None else self._default

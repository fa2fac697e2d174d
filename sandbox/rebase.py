"""Rebasing: move every time of a world document by one whole-second shift, so a world reads "as of now".

A world's data is written as of its `now`; the product reads the wall clock. Without rebasing, a world
rots: a secret "expiring at the end of next month" expires, a runtime's "last contact two days ago" becomes
last month. `load_world` therefore shifts every time in the document by (target − `now`) before parsing:

- every string that is a whole ISO 8601 date-time (`2026-11-27T14:04:40.1187265Z`, `…+02:00`, no zone),
  anywhere in the document, keeping its own format (fraction digits, `Z`, offset or none);
- the Key Vault attribute times under `keyVaults` (`created`, `updated`, `exp`, `nbf`, and a deleted
  secret's `deletedDate` / `scheduledPurgeDate`), which may be unix seconds or ISO strings (date-only too).

The shift is a whole number of seconds, so fraction digits never change and relations between times
(ordering, gaps) are exact. Date-only strings elsewhere, and times inside longer texts (error messages),
stay as written.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

# A whole date-time: date, `T` (or a space), hh:mm[:ss[.fraction]], then `Z`, an offset or nothing.
_DATE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?P<sep>[Tt ])(?P<hm>\d{2}:\d{2})(?P<sec>:\d{2})?"
    r"(?P<frac>[.,]\d+)?(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEY_VAULT_TIMES = frozenset({"created", "updated", "exp", "nbf", "deletedDate", "scheduledPurgeDate"})


def whole_seconds(delta: timedelta) -> timedelta:
    """`delta` without its fraction of a second (towards zero)."""
    return timedelta(seconds=int(delta.total_seconds()))


def shift_time_text(text: str, delta: timedelta) -> str:
    """A date-time string moved by `delta` (whole seconds) in its own format; anything else unchanged."""
    match = _DATE_TIME.match(text)
    if match is None or not delta:
        return text
    seconds = match["sec"] or ""
    try:
        local = datetime.strptime(f"{match['date']} {match['hm']}{seconds or ':00'}", "%Y-%m-%d %H:%M:%S")
        moved = local + delta
    except (ValueError, OverflowError):
        return text
    # The zone is kept as written: moving the wall time in a fixed offset moves the instant by the same.
    clock = moved.strftime("%H:%M:%S" if seconds else "%H:%M")
    if not seconds and moved.second:  # hh:mm cannot say the seconds the shift brings: say them
        clock = moved.strftime("%H:%M:%S")
    return f"{moved:%Y-%m-%d}{match['sep']}{clock}{match['frac'] or ''}{match['zone'] or ''}"


def _shift_vault_time(value: Any, delta: timedelta) -> Any:
    """A Key Vault attribute time: unix seconds stay numbers; ISO strings keep their format (a date-only
    string becomes unix seconds: it cannot hold a shift of part of a day)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return type(value)(value + delta.total_seconds())
    if isinstance(value, str) and _DATE.match(value):
        try:
            midnight = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        except ValueError:
            return value
        return int((midnight + delta).timestamp())
    if isinstance(value, str):
        return shift_time_text(value, delta)
    return value


def shift_document(value: Any, delta: timedelta, *, in_vaults: bool = False) -> Any:
    """A copy of a (JSON-like) world document with every time moved by `delta` (whole seconds)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            inside = in_vaults or key == "keyVaults"
            if in_vaults and key in KEY_VAULT_TIMES and not isinstance(item, dict | list):
                out[key] = _shift_vault_time(item, delta)
            else:
                out[key] = shift_document(item, delta, in_vaults=inside)
        return out
    if isinstance(value, list):
        return [shift_document(item, delta, in_vaults=in_vaults) for item in value]
    if isinstance(value, str):
        return shift_time_text(value, delta)
    return value


def shift_for(world_now: datetime, target: datetime) -> timedelta:
    """The whole-second shift that moves a world written as of `world_now` to `target`."""
    aware = target if target.tzinfo else target.replace(tzinfo=UTC)
    return whole_seconds(aware - world_now)

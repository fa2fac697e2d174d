"""The two questions every listener asks: may this request start work now (in the ack, no I/O), and is
this delivery ours to work (first thing in the background)? See admission.py and dedupe.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from handlers.slack.admission import Refused, Ticket, unbounded
from handlers.slack.deps import Deps


def admit(deps: Deps, user: str | None, channel: str | None) -> Ticket | Refused:
    """A ticket for work that reads Azure, or why not; pure, so it can decide the ack."""
    if deps.admission is None:
        return unbounded()
    return deps.admission.admit(user or None, channel or None)


async def ack_admitted(
    ack: Callable[..., Awaitable[Any]], admitted: Ticket | Refused | None, **reply: Any
) -> None:
    """`ack(**reply)`; when the ack itself fails nothing will run for the request, so its ticket is given
    back before the error goes on."""
    try:
        await ack(**reply)
    except BaseException:
        if isinstance(admitted, Ticket):
            admitted.release()
        raise


async def ours(deps: Deps, body: Mapping[str, Any]) -> bool:
    """False when another replica, or this process before a restart, already took this delivery."""
    if deps.deliveries is None:
        return True
    return await deps.deliveries.claim(body)

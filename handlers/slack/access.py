"""Who may use the bot, where: an allow-list of channels and, optionally, one Slack user group.

A report names identities, vaults and network rules; teams keep it to their on-call channels. The channel
rule is pure (decided before the ack); the user-group rule needs `usergroups.users.list`, so it runs after
the ack, with the members cached for a few minutes per `Access` object (one per process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CHANNEL_REFUSED = "purview-bot is not enabled in this channel."
USER_REFUSED = (
    "purview-bot is only for members of the Slack user group its admins chose: ask them to add you."
)

UNVERIFIED = "purview-bot could not check your user-group membership just now; try again in a minute."


class Access:
    def __init__(
        self,
        allowed_channels: frozenset[str],
        usergroup: str | None = None,
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed_channels = allowed_channels
        self.usergroup = usergroup or None
        self._ttl = ttl_seconds
        self._clock = clock
        self._members: frozenset[str] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def channel_allowed(self, channel_id: str | None) -> bool:
        """Empty allow-list: everywhere the bot is invited. Else only the listed channels (DMs included)."""
        if not self.allowed_channels:
            return True
        return channel_id is not None and channel_id in self.allowed_channels

    async def refusal(
        self, client: AsyncWebClient, channel_id: str | None, user_id: str | None
    ) -> str | None:
        """The one gate every listener passes after its ack: None when this user may use the bot in this
        channel; else the sentence to show them (not escaped)."""
        if not self.channel_allowed(channel_id):
            return CHANNEL_REFUSED
        return await self.user_refusal(client, user_id)

    async def user_refusal(self, client: AsyncWebClient, user_id: str | None) -> str | None:
        """None when the user may use the bot; else the sentence to show them."""
        if self.usergroup is None:
            return None
        try:
            members = await self._group_members(client)
        except SlackApiError:  # logged and counted by the client; fail closed
            return UNVERIFIED
        return None if user_id is not None and user_id in members else USER_REFUSED

    async def _group_members(self, client: AsyncWebClient) -> frozenset[str]:
        async with self._lock:  # one lookup for a burst of commands
            now = self._clock()
            if self._members is None or now - self._fetched_at >= self._ttl:
                assert self.usergroup is not None
                response = await client.usergroups_users_list(usergroup=self.usergroup)
                users = response.get("users") or []
                self._members = frozenset(str(u) for u in users if isinstance(u, str))
                self._fetched_at = now
                log.info("user group %s: %d members", self.usergroup, len(self._members))
            return self._members

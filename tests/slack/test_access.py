"""Where and for whom the bot answers: the channel allow-list, and the optional user group (cached)."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from handlers.slack.access import UNVERIFIED, USER_REFUSED, Access


class GroupClient(AsyncWebClient):
    """usergroups.users.list answered locally; counts the calls."""

    def __init__(self, users: list[str], *, fail: bool = False) -> None:
        super().__init__(token="xoxb-test", base_url="http://127.0.0.1:9/api/")
        self.users = users
        self.fail = fail
        self.calls: list[str] = []

    async def usergroups_users_list(self, *, usergroup: str, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls.append(usergroup)
        if self.fail:
            raise SlackApiError("no_permission", {"ok": False, "error": "missing_scope"})
        return {"ok": True, "users": self.users}


def test_empty_allow_list_allows_every_channel() -> None:
    access = Access(frozenset())
    assert access.channel_allowed("C1") and access.channel_allowed("D1")


def test_allow_list_allows_only_its_channels() -> None:
    access = Access(frozenset({"C1", "C2"}))
    assert access.channel_allowed("C1")
    assert not access.channel_allowed("C3")
    assert not access.channel_allowed("D1")  # DMs too: the list says where reports may be seen
    assert not access.channel_allowed(None)


def test_allow_list_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("PURVIEW_BOT_ALLOWED_CHANNELS", " C1, C2 C3 ,")
    monkeypatch.setenv("PURVIEW_BOT_ALLOWED_USERGROUP", "S0ONCALL")
    settings = Settings()
    assert settings.allowed_channel_ids == frozenset({"C1", "C2", "C3"})
    assert settings.allowed_usergroup == "S0ONCALL"


async def test_no_user_group_means_everyone_without_a_call() -> None:
    client = GroupClient([])
    assert await Access(frozenset()).user_refusal(client, "U1") is None
    assert client.calls == []


async def test_user_group_members_only_and_cached() -> None:
    now = [0.0]
    client = GroupClient(["U1", "U2"])
    access = Access(frozenset(), "S0ONCALL", ttl_seconds=300, clock=lambda: now[0])
    assert await access.user_refusal(client, "U1") is None
    assert await access.user_refusal(client, "U9") == USER_REFUSED
    assert await access.user_refusal(client, None) == USER_REFUSED
    assert client.calls == ["S0ONCALL"]  # one lookup for the three

    client.users = ["U9"]
    now[0] = 299.0
    assert await access.user_refusal(client, "U9") == USER_REFUSED  # still the cached members
    now[0] = 300.0
    assert await access.user_refusal(client, "U9") is None  # refreshed after the TTL
    assert len(client.calls) == 2


async def test_user_group_lookup_failing_refuses() -> None:
    client = GroupClient(["U1"], fail=True)
    access = Access(frozenset(), "S0ONCALL")
    assert await access.user_refusal(client, "U1") == UNVERIFIED

"""`/purview-check watch | unwatch | watches`: channel watches kept in the store, which the watcher's
router reads beside the configured routes: the routes decide the on-call channel, a watch adds a channel
(issue 9, item 2). Every watch is listed for everyone (`watches --all`); another channel's watch is removed
from the on-call channel of its scope or by an admin; a direct message holds none."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Store, Watch, open_store
from handlers.watch.routing import Place, Route, Router, parse_routes
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness, plain
from tests.slack.fake_slack import FakeSlack
from tests.slack.signing import USER_ID, slash_command

ACCOUNT = "contoso-pv"
ARM_ID = (
    "/subscriptions/7e2e9e63-bacb-4459-8c63-99796f32e7cf/resourceGroups/rg-purview/providers/"
    "Microsoft.Purview/accounts/contoso-pv"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The store the bot uses: the harness points PURVIEW_BOT_DATABASE_URL at this SQLite file."""
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'purview-bot.db'}")
    yield opened
    await opened.close()


def words(text: str) -> str:
    """`plain`, and the look-alike that escaped backticks become."""
    return plain(text).replace("\u02cb", "")


async def answer(bot: BotHarness, text: str, expect: str, *, channel: str = CHANNEL) -> str:
    """`/purview-check TEXT` in `channel`; the ephemeral answer, once it mentions `expect`."""
    ack = await bot.command(text, channel_id=channel)
    assert ack.status == 200
    return words(await bot.ephemeral(ack, expect))


async def test_watch_watches_unwatch_round_trip_with_the_store(
    bot: BotHarness, slack: FakeSlack, store: Store
) -> None:
    said = await answer(bot, "watch --collection sales", "now gets")
    assert "collection sales in contoso-pv" in said
    assert await store.watches() == [Watch(CHANNEL, ACCOUNT, "sales", None)]

    # the source as Purview spells it, the account by name; the default account when none is given
    await answer(bot, "watch contoso-pv --source SALES-ADLS", "now gets")
    await answer(bot, "watch", "now gets")
    await answer(bot, "watch --source=hr-sql", "now gets", channel="C222")
    assert set(await store.watches()) == {
        Watch(CHANNEL, ACCOUNT, "sales", None),
        Watch(CHANNEL, ACCOUNT, None, "sales-adls"),
        Watch(CHANNEL, ACCOUNT, None, None),
        Watch("C222", ACCOUNT, None, "hr-sql"),
    }

    listed = await answer(bot, "watches", "automatic posts")
    assert "collection sales in contoso-pv" in listed
    assert "data source sales-adls in contoso-pv" in listed
    assert "every data source in contoso-pv" in listed
    assert "hr-sql" not in listed, "another channel's watch listed here"

    assert "already watches" in await answer(bot, "watch --collection sales", "already")
    assert len(await store.watches()) == 4

    # unwatch matches whatever the case; the other watches stay
    said = await answer(bot, "unwatch CONTOSO-PV --collection SALES", "no longer")
    assert "collection sales in contoso-pv" in said
    await answer(bot, "unwatch --source sales-adls", "no longer")
    await answer(bot, "unwatch", "no longer")
    assert await store.watches() == [Watch("C222", ACCOUNT, None, "hr-sql")]
    assert "watches nothing" in await answer(bot, "watches", "watches nothing")

    not_watched = await answer(bot, "unwatch --collection finance", "does not watch")
    assert "watches nothing" in not_watched

    await slack.settle()
    assert not slack.calls_to("chat.postMessage"), "a watch command posted in the channel"


async def test_a_second_channel_watching_the_same_scope_is_told(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --source hr-sql", "now gets", channel="C222")
    said = await answer(bot, "watch --source hr-sql", "now gets")
    assert "Also watched from <#C222>" in said


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("watch --collection", "--collection needs a NAME"),
        ("watch --source=", "--source needs a NAME"),
        ("watch --collection sales --source hr-sql", "one of"),
        ("watch --source a --source b", "one of"),
        ("watch contoso-pv extra", "too many words after watch: extra"),
        ("watch --scan weekly", "unknown option --scan"),
        ("unwatch a b c", "too many words after unwatch"),
        ("watches contoso-pv", "watches takes only --all"),
        ("watches --all contoso-pv", "watches takes only --all"),
        ("watches --mine", "watches takes no option --mine"),
        ("unwatch --channel #oncall", "--channel needs a channel's id, not #oncall"),
        ("unwatch --channel", "--channel needs a channel's id"),
        ("watch --channel C0123ABCD", "unknown option --channel"),
    ],
)
async def test_bad_input_is_usage_and_what_was_wrong(
    bot: BotHarness, store: Store, text: str, complaint: str
) -> None:
    said = await answer(bot, text, "usage")
    assert complaint in said
    assert "/purview-check watch [ACCOUNT] [--collection NAME | --source NAME]" in said
    assert await store.watches() == []


async def test_unknown_account_lists_the_configured_ones(bot: BotHarness, store: Store) -> None:
    said = await answer(bot, "watch nope-pv --collection sales", "no purview account")
    assert "No Purview account nope-pv here. The accounts are: contoso-pv" in said
    said = await answer(bot, "unwatch nope-pv", "does not watch")
    assert "The accounts here are: contoso-pv" in said
    assert await store.watches() == []


async def test_unknown_source_gets_did_you_mean(bot: BotHarness, slack: FakeSlack, store: Store) -> None:
    said = await answer(bot, "watch --source sales-adl", "did you mean")
    assert "No data source named sales-adl. Did you mean: sales-adls" in said
    assert await store.watches() == []


async def test_a_collection_with_no_data_source_is_kept_with_a_note_and_escaped(
    bot: BotHarness, store: Store
) -> None:
    ack = await bot.command('watch --collection "<!channel> sale"')
    raw = await bot.ephemeral(ack, "no data source is in collection")
    assert "<!channel>" not in raw and "&lt;!channel&gt;" in raw
    assert await store.watches() == [Watch(CHANNEL, ACCOUNT, "<!channel> sale", None)]
    said = await answer(bot, "watch --collection salse", "no data source is in collection")
    assert "Collections with data sources: sales" in said
    listed = await bot.ephemeral(await bot.command("watches"), "automatic posts")
    assert "<!channel>" not in listed and "&lt;!channel&gt;" in listed


async def test_watch_commands_respect_the_channel_allow_list(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    async with start_bot(env={"PURVIEW_BOT_ALLOWED_CHANNELS": "C_ALLOWED"}) as bot:
        for text in ("watch", "unwatch", "watches"):
            assert "not enabled in this channel" in await answer(bot, text, "not enabled")
        assert "now gets" in await answer(bot, "watch", "now gets", channel="C_ALLOWED")
    assert await store.watches() == [Watch("C_ALLOWED", ACCOUNT, None, None)]


async def test_help_names_the_watch_commands(bot: BotHarness) -> None:
    usage = await answer(bot, "help", "usage")
    for line in (
        "watch [ACCOUNT]",
        "unwatch [ACCOUNT]",
        "/purview-check watches [--all]",
        "--channel CHANNEL",
    ):
        assert line in usage


# --- routing: the routes decide on-call, the watches add channels (handlers/watch/routing.py) ---------


async def test_the_router_adds_the_watching_channels_to_the_routed_one(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --collection sales", "now gets", channel="C_SALES")
    await answer(bot, "watch --source hr-sql", "now gets", channel="C_HR")
    watches = await store.watches()
    routes = parse_routes(json.dumps([{"channel": "C_ACCOUNT", "account": ACCOUNT}]))
    router = Router(routes, "C_DEFAULT")

    assert router.channels(Place(ACCOUNT, "sales", "sales-adls"), watches) == ["C_ACCOUNT", "C_SALES"]
    # PURVIEW_ACCOUNTS may hold ARM ids: watches name the account
    assert router.channels(Place(ARM_ID, "people", "hr-sql"), watches) == ["C_ACCOUNT", "C_HR"]
    assert router.channels(Place(ACCOUNT, "finance", "finance-sql"), watches) == ["C_ACCOUNT"]
    assert router.channels(Place("other-pv", "sales", "x"), watches) == ["C_DEFAULT"]


def test_a_more_specific_watch_never_takes_the_failure_from_the_route() -> None:
    """Issue 9, item 2: a watch of a source used to beat a collection route (on-call heard nothing)."""
    router = Router([Route("C_ROUTE", collection="sales")], None)
    watches = [Watch("C_WATCH", ACCOUNT, "sales", None), Watch("C_SOURCE", ACCOUNT, None, "sales-adls")]
    assert router.channels(Place(ACCOUNT, "sales", "sales-adls"), watches) == [
        "C_ROUTE",
        "C_WATCH",
        "C_SOURCE",
    ]
    assert router.routed(Place(ACCOUNT, "sales", "sales-adls")) == "C_ROUTE"


# --- who may do what (issue 9, item 2) -----------------------------------------------------------------


async def test_a_direct_message_cannot_hold_a_watch(bot: BotHarness, store: Store) -> None:
    said = await answer(bot, "watch --source sales-adls", "direct message", channel="D0DIRECT")
    assert "A direct message cannot hold a watch" in said
    assert await store.watches() == []


async def test_the_answer_says_the_on_call_channel_still_gets_the_posts(
    start_bot: BotFactory, store: Store
) -> None:
    routes = json.dumps([{"channel": "C0ONCALL", "source": "sales-adls"}])
    env = {"PURVIEW_BOT_ROUTES": routes, "PURVIEW_BOT_ALERT_CHANNEL": "C0ALERTS"}
    async with start_bot(env=env) as bot:
        said = await answer(bot, "watch --source sales-adls", "now gets", channel="C0RANDOM")
        assert "the on-call channel <#C0ONCALL> still gets them too" in said


async def test_another_channel_cannot_remove_a_watch(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --source sales-adls", "now gets", channel="C0RANDOM")
    said = await answer(
        bot, "unwatch --source sales-adls --channel C0RANDOM", "can remove", channel="C0OTHER"
    )
    assert "Only <#C0RANDOM> itself, the on-call channel of data source sales-adls in contoso-pv" in said
    assert await store.watches() == [Watch("C0RANDOM", ACCOUNT, None, "sales-adls")]
    said = await answer(
        bot, "unwatch --source sales-adls --channel C0NOBODY", "does not watch", channel="C0OTHER"
    )
    assert "<#C0NOBODY> does not watch data source sales-adls in contoso-pv" in said


async def test_every_channel_sees_every_watch_with_how_to_remove_it(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --source sales-adls", "now gets", channel="C0RANDOM")
    await answer(bot, 'watch --collection "sales team"', "now gets", channel="C0SALES")
    await store.add_watch(Watch("D0LEGACY", ACCOUNT))  # from before DMs were refused
    listed = await answer(bot, "watches --all", "every channel's watches (", channel="C0ONCALL")
    assert "<#C0RANDOM> C0RANDOM: data source sales-adls in contoso-pv" in listed
    assert "/purview-check unwatch contoso-pv --source sales-adls --channel C0RANDOM" in listed
    assert '/purview-check unwatch contoso-pv --collection "sales team" --channel C0SALES' in listed
    assert (
        "<#D0LEGACY> D0LEGACY (a direct message: never posted to): every data source in contoso-pv" in listed
    )
    # without --all: this channel's own, as before
    assert "watches nothing" in await answer(bot, "watches", "watches nothing", channel="C0ONCALL")


async def test_the_on_call_channel_removes_another_channels_watch(
    start_bot: BotFactory, store: Store
) -> None:
    routes = json.dumps([{"channel": "C0ONCALL", "collection": "sales"}])
    env = {"PURVIEW_BOT_ROUTES": routes, "PURVIEW_BOT_ALERT_CHANNEL": "C0ALERTS"}
    async with start_bot(env=env) as bot:
        for channel in ("C0RANDOM", "C0OTHER"):
            await answer(bot, "watch --source sales-adls", "now gets", channel=channel)
        await answer(bot, "watch", "now gets", channel="C0RANDOM")
        # the routed channel of sales-adls (its collection's route) removes one
        text = "unwatch --source sales-adls --channel C0RANDOM"
        said = await answer(bot, text, "no longer", channel="C0ONCALL")
        assert "<#C0RANDOM> no longer watches data source sales-adls in contoso-pv" in said
        # the alert channel removes any
        said = await answer(bot, "unwatch --channel <#C0RANDOM|random>", "no longer", channel="C0ALERTS")
        assert "<#C0RANDOM> no longer watches every data source in contoso-pv" in said
        # the sales route is not on-call for the whole account
        said = await answer(
            bot, "unwatch --source sales-adls --channel C0OTHER", "can remove", channel="C0HR"
        )
        assert "(<#C0ALERTS>, <#C0ONCALL>)" in said
    assert await store.watches() == [Watch("C0OTHER", ACCOUNT, None, "sales-adls")]


async def test_a_member_of_the_admin_group_removes_any_watch(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.usergroups["S0ADMINS"] = [USER_ID]
    async with start_bot(env={"PURVIEW_BOT_ADMIN_USERGROUP": "S0ADMINS"}) as bot:
        await answer(bot, "watch --source sales-adls", "now gets", channel="C0RANDOM")
        await answer(bot, "watch", "now gets", channel="C0RANDOM")
        text = "unwatch --source sales-adls --channel C0RANDOM"
        said = await answer_as(bot, "U0NOTADMIN", text, "can remove", channel="C0ELSE")
        assert "or a member of the admin user group can remove that watch" in said
        said = await answer(bot, text, "no longer", channel="C0ELSE")
        assert "<#C0RANDOM> no longer watches data source sales-adls in contoso-pv" in said
    assert await store.watches() == [Watch("C0RANDOM", ACCOUNT, None, None)]


async def answer_as(bot: BotHarness, user: str, text: str, expect: str, *, channel: str) -> str:
    """`answer`, typed by another user."""
    url = bot.new_response_url("as")
    ack = await bot.send(slash_command(text, channel_id=channel, user_id=user, response_url=url))
    ack.response_url, ack.response_id = url, url.rsplit("/", 1)[-1]
    assert ack.status == 200
    return words(await bot.ephemeral(ack, expect))

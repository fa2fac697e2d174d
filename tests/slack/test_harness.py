"""The harness itself, checked against slack-sdk: if these fail, the scenario tests prove nothing."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.slack import signing
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack, iter_strings

TOKEN = "xoxb-test"
META = {"event_type": "purview_report", "event_payload": {"source": "sales-adls"}}


async def test_post_update_and_replies_round_trip_through_slack_sdk(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.url)
    auth = await client.auth_test()
    assert auth["user_id"]
    parent = await client.chat_postMessage(channel="C1", text="Checking…", metadata=META)
    reply = await client.chat_postMessage(channel="C1", thread_ts=parent["ts"], text="findings")
    assert reply["ts"] != parent["ts"]
    await client.chat_update(channel="C1", ts=parent["ts"], text="summary", blocks=[])
    thread = await client.conversations_replies(channel="C1", ts=parent["ts"], include_all_metadata=True)
    assert [m["text"] for m in thread["messages"]] == ["summary", "findings"]
    assert thread["messages"][0]["metadata"] == META
    assert slack.calls_to("chat.postMessage")[0].authorization == f"Bearer {TOKEN}"
    assert slack.thread("C1", parent["ts"])[0].args["text"] == "findings"
    email = await client.users_info(user="W111")
    assert email["user"]["profile"]["email"]


async def test_history_is_slacks_newest_first_top_level_paged_with_thread_fields(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.url)
    before = time.time()
    posted = [
        (await client.chat_postMessage(channel="C1", text=f"m{i}", metadata=META))["ts"] for i in range(5)
    ]
    assert before <= float(posted[0]) <= time.time()  # ts is the post time, unique and increasing
    assert [float(t) for t in posted] == sorted({float(t) for t in posted})
    await client.chat_postMessage(channel="C2", text="elsewhere")
    replies = [
        (await client.chat_postMessage(channel="C1", thread_ts=posted[1], text=f"r{i}"))["ts"]
        for i in range(2)
    ]
    human = f"{float(replies[-1]) + 0.001:.6f}"
    slack.add_message("C1", human, "human reply", user="W9", thread_ts=posted[1])

    page = await client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"]  # newest first, replies left out
    assert page["has_more"] and "metadata" not in page["messages"][0]
    texts, cursor = [], page["response_metadata"]["next_cursor"]
    while cursor:
        page = await client.conversations_history(
            channel="C1", limit=2, cursor=cursor, include_all_metadata=True
        )
        texts += [m["text"] for m in page["messages"]]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        assert page["messages"][0]["metadata"] == META
    assert texts == ["m2", "m1", "m0"] and not page["has_more"]

    everything = {m["text"]: m for m in (await client.conversations_history(channel="C1"))["messages"]}
    parent = everything["m1"]
    assert parent["reply_count"] == 3 and parent["thread_ts"] == posted[1]
    assert parent["latest_reply"] == human and parent["reply_users"] == [BOT_USER_ID, "W9"]
    assert all("reply_count" not in m for t, m in everything.items() if t != "m1")
    thread = await client.conversations_replies(channel="C1", ts=posted[1])
    assert thread["messages"][0]["reply_count"] == 3

    between = await client.conversations_history(channel="C1", oldest=posted[1], latest=posted[3])
    assert [m["text"] for m in between["messages"]] == ["m2"]  # bounds excluded by default
    inclusive = await client.conversations_history(
        channel="C1", oldest=posted[1], latest=posted[3], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["m3", "m2", "m1"]
    with pytest.raises(SlackApiError) as err:
        await client.conversations_history(channel="C1", cursor="bogus")
    assert err.value.response["error"] == "invalid_cursor"
    slack.fail("conversations.history", error="not_in_channel", times=1)
    with pytest.raises(SlackApiError):
        await client.conversations_history(channel="C1")


async def test_scripted_errors_rate_limits_and_server_errors(slack: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.url)
    slack.fail("chat.postMessage", error="not_in_channel", times=1)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_in_channel"
    await client.chat_postMessage(channel="C1", text="x")  # once only

    retrying = AsyncWebClient(
        token=TOKEN, base_url=slack.url, retry_handlers=[AsyncRateLimitErrorRetryHandler()]
    )
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    started = time.monotonic()
    await retrying.chat_postMessage(channel="C1", text="y")
    assert time.monotonic() - started >= 0.9
    assert [c.status for c in slack.calls_to("chat.postMessage")][-2:] == [429, 200]

    slack.fail("conversations.join", error="method_not_supported_for_channel_type")
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.conversations_join(channel="G1")
    slack.fail("chat.update", status=500)
    with pytest.raises(SlackApiError):
        await client.chat_update(channel="C1", ts="1.2", text="z")


async def test_response_url_and_wait_for(slack: FakeSlack) -> None:
    hook = AsyncWebhookClient(slack.response_url("abc"))
    await hook.send(text="hello", response_type="ephemeral")
    call = await slack.wait_for("response_url", lambda c: c.response_id == "abc", timeout=1)
    assert call.args == {"text": "hello", "response_type": "ephemeral"}
    with pytest.raises(AssertionError):
        await slack.wait_for("chat.postMessage", timeout=0.1)


def test_signatures_are_what_slack_sdk_verifies() -> None:
    request = signing.slash_command("sales-adls", channel_id="C9")
    headers = signing.signed_headers("s3cret", request.body)
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid_request(request.body, headers)
    assert not SignatureVerifier("other").is_valid_request(request.body, headers)
    stale = signing.signed_headers("s3cret", request.body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(request.body, stale)
    assert parse_qs(request.body)["channel_id"] == ["C9"]
    action = signing.block_action("v", "C1", "1.1", "1.0", "http://x")
    assert json.loads(parse_qs(action.body)["payload"][0])["actions"][0]["value"] == "v"


def test_iter_strings_walks_everything() -> None:
    assert sorted(iter_strings({"a": ["x", {"b": "y"}], "c": 1})) == ["x", "y"]


def test_the_fake_refuses_invalid_block_kit_as_slack_does() -> None:
    """The Block Kit check every test gets through the fake: a section over 3,000 characters, an unknown
    block, a modal title over 24 characters and a 101-block Home tab are refused; valid ones pass."""
    from tests.slack.fake_slack import block_kit_errors

    ok = {"type": "section", "text": {"type": "mrkdwn", "text": "fine"}}
    assert block_kit_errors({"blocks": json.dumps([ok])}) == []
    assert block_kit_errors({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]})
    assert block_kit_errors({"blocks": [{"type": "no-such-block"}]})
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": [ok]}
    assert block_kit_errors({"view": modal})
    assert block_kit_errors({"view": {"type": "home", "blocks": [ok] * 101}})
    assert block_kit_errors({"view": {"type": "home", "blocks": [ok]}}) == []

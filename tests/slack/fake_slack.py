"""A local fake of the Slack Web API, so the bot's real AsyncWebClient can be tested over 127.0.0.1.

Point `SLACK_API_URL` at `slack.url` (slack-sdk joins it with the method name by `urljoin`, so it ends
in `/api/`). Every call is recorded with its parsed arguments, headers and the answer given, and failures
can be scripted per method (Slack-style `ok: false` errors, 429 with `Retry-After`, 5xx, bodies that are
not JSON, a connection dropped without an answer), for every call or only those matching a predicate,
and after the call took effect (`stored=True`: the message is kept, the answer still fails).

Messages are held as Slack holds them: a message's `ts` is the time it was posted (µs, unique), and
`conversations.history` / `conversations.replies` answer from what was posted (or seeded), with Slack's
rules (see `FakeSlack._history`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

Json = dict[str, Any]

BOT_USER_ID = "U0PURVIEWBOT"
BOT_ID = "B0PURVIEWBOT"
TEAM_ID = "T111"
DEFAULT_EMAIL = "oncall@contoso.com"

# form fields that Slack accepts as JSON-encoded strings
_JSON_FIELDS = ("blocks", "attachments", "metadata")


@dataclass
class Call:
    """One request the bot made to the fake Slack, and what it was answered."""

    method: str
    """The Web API method (`chat.postMessage`), or `response_url` for the response-URL endpoint."""
    args: Json
    """Query, form and JSON arguments merged; JSON-encoded form fields (blocks, metadata) decoded."""
    body: Any
    """The body as sent: parsed JSON, a form dict, or None."""
    headers: dict[str, str]
    at: float
    """`time.monotonic()` when the request arrived."""
    status: int = 200
    response: Any = None
    response_id: str | None = None
    """For `response_url` calls: the id given to `FakeSlack.response_url(id)`."""

    @property
    def ok(self) -> bool:
        """True when the fake answered this call successfully."""
        if self.status != 200:
            return False
        return not isinstance(self.response, dict) or bool(self.response.get("ok", True))

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")

    @property
    def text(self) -> str:
        """Everything Slack would render from this call: `text` and every block string, one per line."""
        return "\n".join(iter_strings(self.args, skip=NOT_RENDERED))

    @property
    def has_rerun_button(self) -> bool:
        return self.button("purview_rerun") is not None

    def button(self, action_id: str) -> Json | None:
        """The button element with `action_id` in this call's blocks, if any."""
        for block in self.args.get("blocks") or []:
            if isinstance(block, dict) and block.get("type") == "actions":
                for element in block.get("elements") or []:
                    if isinstance(element, dict) and element.get("action_id") == action_id:
                        return element
        return None


@dataclass
class _Failure:
    error: str | None
    status: int
    retry_after: float | str | None
    remaining: int | None
    stored: bool = False
    body: str | None = None
    content_type: str | None = None
    drop: bool = False
    when: Callable[[Json], bool] | None = None


@dataclass
class Message:
    """A message the fake holds, so chat.update and conversations.replies behave like Slack."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    metadata: Json | None = None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID

    @property
    def is_top_level(self) -> bool:
        """A message in the channel itself (a thread's parent included), not a reply in a thread."""
        return self.thread_ts in (None, self.ts)

    def as_json(self, *, with_metadata: bool = True, replies: list[Message] | None = None) -> Json:
        """The message as Slack returns it; a parent with `replies` carries Slack's thread fields
        (`thread_ts`, `reply_count`, `reply_users_count`, `latest_reply`, `reply_users`)."""
        out: Json = {"type": "message", "ts": self.ts, "text": self.text, "user": self.user}
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if replies:
            users = list(dict.fromkeys(m.user for m in replies))
            out.update(
                thread_ts=self.ts,
                reply_count=len(replies),
                reply_users_count=len(users),
                latest_reply=max(replies, key=lambda m: float(m.ts)).ts,
                reply_users=users,
            )
        if self.metadata and with_metadata:
            out["metadata"] = self.metadata
        return out


# Arguments Slack never shows to anyone: message metadata, a button's value, ids and routing fields.
NOT_RENDERED = frozenset(
    {"metadata", "value", "action_id", "block_id", "channel", "ts", "thread_ts", "token", "user"}
)


def iter_strings(value: Any, *, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string anywhere in a JSON-like value (keys excluded, and values under `skip` keys)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                yield from iter_strings(item, skip=skip)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_strings(item, skip=skip)


class FakeSlack:
    """`async with FakeSlack() as slack:` a Slack Web API on 127.0.0.1 that records and can misbehave."""

    def __init__(self, *, user_emails: dict[str, str] | None = None) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.user_emails: dict[str, str] = dict(user_emails or {})
        self.usergroups: dict[str, list[str]] = {}
        self.joined: set[str] = set()
        self.home_views: dict[str, Json] = {}  # user id → the Home tab view last published for them
        # every message, ephemeral answer and view the bot sent is checked with slack-sdk's Block Kit
        # models; what fails is answered `invalid_blocks` (as Slack does) and fails the test on exit
        self.invalid_block_kit: list[str] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._last_ts = 0.0
        self._runner: web.AppRunner | None = None
        self._base: str | None = None
        self._changed: asyncio.Condition | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_route("*", "/response/{id}", self._response_url)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._changed = asyncio.Condition()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if exc_type is None and self.invalid_block_kit:
            raise AssertionError(f"the bot sent invalid Block Kit: {self.invalid_block_kit[:5]}")

    @property
    def url(self) -> str:
        """The Web API base for `SLACK_API_URL`, with the trailing slash slack-sdk's urljoin needs."""
        if self._base is None:
            raise RuntimeError("the fake Slack is not running")
        return f"{self._base}/api/"

    def response_url(self, response_id: str) -> str:
        """A `response_url` on this server; what the bot sends there is recorded as method `response_url`."""
        if self._base is None:
            raise RuntimeError("the fake Slack is not running")
        return f"{self._base}/response/{response_id}"

    # --- scripting ---------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str | None = None,
        *,
        status: int = 200,
        retry_after: float | str | None = None,
        times: int | None = None,
        stored: bool = False,
        body: str | None = None,
        content_type: str = "text/html",
        drop: bool = False,
        when: Callable[[Json], bool] | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail (every call when `times` is None).

        `error` alone answers 200 `{"ok": false, "error": …}` as Slack does; `status=429` adds
        `Retry-After` (`retry_after`, sent as given: `40`, `1.5`, `soon`); other statuses answer that
        HTTP status. `body` answers that text as `content_type` instead of Slack's JSON (a proxy's HTML
        page, or `application/json` that is not JSON). `drop` closes the connection without an answer.
        `stored`: the call takes effect first (a posted message is kept), then the failure is answered.
        `when`: only calls whose arguments match fail (and count towards `times`).
        """
        if error is None and status == 200 and body is None and not drop:
            raise ValueError("give an error code, a non-200 status, a body or drop")
        failure = _Failure(
            error,
            status,
            retry_after,
            times,
            stored,
            body,
            content_type if body is not None else None,
            drop,
            when,
        )
        self._failures.setdefault(method, []).append(failure)

    def clear_failures(self) -> None:
        self._failures.clear()

    def add_message(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        user: str = "W222",
        thread_ts: str | None = None,
        metadata: Json | None = None,
    ) -> Message:
        """Seed a message a human wrote (a thread the bot did not start)."""
        msg = Message(channel, ts, text, thread_ts=thread_ts, metadata=metadata, user=user, bot_id=None)
        self.messages[(channel, ts)] = msg
        return msg

    # --- assertions --------------------------------------------------------------------------------

    def posted(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """The messages the bot has in `channel`: top-level ones, or the replies of `thread_ts`, by ts."""
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel
                and m.bot_id == BOT_ID
                and (
                    m.is_top_level if thread_ts is None else (m.thread_ts == thread_ts and m.ts != thread_ts)
                )
            ),
            key=lambda m: float(m.ts),
        )

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Recorded calls of one method, in order; `ok=True` keeps only the ones answered successfully."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def thread(self, channel: str, thread_ts: str) -> list[Call]:
        """Successful chat.postMessage calls posted into one thread, in order."""
        return [
            c
            for c in self.calls_to("chat.postMessage", ok=True)
            if c.args.get("channel") == channel and c.args.get("thread_ts") == thread_ts
        ]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - a test helper owning its deadline reads best
    ) -> Call:
        """The first recorded call of `method` matching `predicate`, waiting for it up to `timeout` s."""
        return (await self.wait_for_count(method, 1, predicate, timeout))[0]

    async def wait_for_count(
        self,
        method: str,
        count: int,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[Call]:
        """At least `count` recorded calls of `method` matching `predicate` (all of them, in order)."""
        assert self._changed is not None, "start the fake Slack first"

        def matching() -> list[Call]:
            return [c for c in self.calls if c.method == method and (predicate is None or predicate(c))]

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
            except TimeoutError:
                seen = [(c.method, c.status, _short(c.args)) for c in self.calls]
                raise AssertionError(
                    f"no {count} x {method} matching within {timeout}s; calls so far: {seen}"
                ) from None
        return matching()

    async def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no call has arrived for `quiet` seconds: the bot has finished what it was doing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.calls[-1].at if self.calls else 0.0
            wait = last + quiet - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(wait)
        raise AssertionError(f"the bot kept calling Slack for {timeout}s")

    # --- the server --------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        method = request.match_info["method"]
        body, args = await _parse(request)
        call = Call(method, args, body, dict(request.headers), at)
        failure = self._take_failure(method, args)
        if failure is not None and failure.stored and (handler := _METHODS.get(method)):
            handler(self, args)  # the call took effect; its answer is lost below
        if failure is not None and failure.drop:
            call.status, call.response = 0, None
            await self._record(call)
            assert request.transport is not None
            request.transport.close()  # no answer at all: the client sees the connection drop
            return web.Response()
        if failure is not None:
            response = self._failure_response(failure)
        elif not call.authorization.startswith("Bearer ") and "token" not in args:
            response = web.json_response({"ok": False, "error": "not_authed"})
        elif errors := block_kit_errors(args):
            self.invalid_block_kit += [f"{method}: {e}" for e in errors]
            response = web.json_response({"ok": False, "error": "invalid_blocks", "errors": errors})
        else:
            handler = _METHODS.get(method)
            payload = handler(self, args) if handler else {"ok": False, "error": "unknown_method"}
            response = web.json_response(payload)
        call.status = response.status
        call.response = _response_json(response)
        await self._record(call)
        return response

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        body, args = await _parse(request)
        call = Call("response_url", args, body, dict(request.headers), at)
        call.response_id = request.match_info["id"]
        failure = self._take_failure("response_url", args)
        errors = [] if failure else block_kit_errors(args)
        self.invalid_block_kit += [f"response_url: {e}" for e in errors]
        if failure:
            response = self._failure_response(failure)
        elif errors:
            response = web.json_response({"ok": False, "error": "invalid_blocks"}, status=400)
        else:
            response = web.Response(text="ok")
        call.status = response.status
        call.response = _response_json(response)
        await self._record(call)
        return response

    def _take_failure(self, method: str, args: Json) -> _Failure | None:
        for failure in self._failures.get(method, []):
            if failure.remaining == 0:
                continue
            if failure.when is not None and not failure.when(args):
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
            return failure
        return None

    @staticmethod
    def _failure_response(failure: _Failure) -> web.Response:
        if failure.body is not None:
            return web.Response(status=failure.status, text=failure.body, content_type=failure.content_type)
        if failure.status == 429:
            retry_after = failure.retry_after or 1
            headers = {
                "Retry-After": str(int(retry_after) if isinstance(retry_after, int | float) else retry_after)
            }
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        if failure.status != 200:
            return web.json_response({"ok": False, "error": "fatal_error"}, status=failure.status)
        return web.json_response({"ok": False, "error": failure.error})

    # --- methods -----------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        """Slack's ts is the post's time (µs), unique: `oldest`/`latest` in the history filter on it."""
        self._last_ts = max(time.time(), self._last_ts + 1e-6)
        return f"{self._last_ts:.6f}"

    def replies_of(self, channel: str, ts: str) -> list[Message]:
        """The replies in the thread of `ts` (the parent excluded), oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts and m.ts != ts),
            key=lambda m: float(m.ts),
        )

    def _auth_test(self, args: Json) -> Json:
        return {
            "ok": True,
            "url": "https://contoso.slack.com/",
            "team": "Contoso",
            "user": "purview-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: Json) -> Json:
        channel = str(args.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        thread_ts = args.get("thread_ts") or None
        metadata = args.get("metadata") if isinstance(args.get("metadata"), dict) else None
        msg = Message(
            channel, ts, str(args.get("text") or ""), list(args.get("blocks") or []), thread_ts, metadata
        )
        self.messages[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg.as_json()}

    def _update(self, args: Json) -> Json:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        msg = self.messages.get((channel, ts))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in args:
            msg.text = str(args["text"])
        if "blocks" in args:
            msg.blocks = list(args["blocks"] or [])
        if isinstance(args.get("metadata"), dict):
            msg.metadata = args["metadata"]
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text, "message": msg.as_json()}

    def _post_ephemeral(self, args: Json) -> Json:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _join(self, args: Json) -> Json:
        channel = str(args.get("channel", ""))
        self.joined.add(channel)
        return {"ok": True, "channel": {"id": channel, "is_channel": True, "is_member": True}}

    def _replies(self, args: Json) -> Json:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        parent = self.messages.get((channel, ts))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = _flag(args.get("include_all_metadata"))
        replies = self.replies_of(channel, ts)
        out = [parent.as_json(with_metadata=with_metadata, replies=replies)]
        out += [m.as_json(with_metadata=with_metadata) for m in replies]
        return {"ok": True, "messages": out, "has_more": False}

    def _history(self, args: Json) -> Json:
        """`conversations.history` as Slack answers it: the channel's top-level messages (thread parents
        with `reply_count`/`latest_reply`, never the replies), newest first, between `oldest` and `latest`
        (exclusive unless `inclusive`), `limit` per page (default 100, at most 999) with cursor paging
        (`has_more`, `response_metadata.next_cursor`), metadata only with `include_all_metadata`."""
        channel = str(args.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args.get("latest") or "inf")
            limit = int(args.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if limit < 1:
            limit = 100
        limit = min(limit, 999)
        inclusive = _flag(args.get("inclusive"))
        with_metadata = _flag(args.get("include_all_metadata"))

        def in_range(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        top = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel and m.is_top_level and in_range(float(m.ts))
            ),
            key=lambda m: float(m.ts),
            reverse=True,
        )
        if cursor := str(args.get("cursor") or ""):
            start = _cursor_ts(cursor)
            if start is None:
                return {"ok": False, "error": "invalid_cursor"}
            top = [m for m in top if float(m.ts) <= start]
        page, rest = top[:limit], top[limit:]
        out: Json = {
            "ok": True,
            "messages": [
                m.as_json(with_metadata=with_metadata, replies=self.replies_of(channel, m.ts)) for m in page
            ],
            "has_more": bool(rest),
            "pin_count": 0,
        }
        if rest:
            out["response_metadata"] = {"next_cursor": _make_cursor(rest[0].ts)}
        return out

    def _users_info(self, args: Json) -> Json:
        user = str(args.get("user", ""))
        email = self.user_emails.get(user, DEFAULT_EMAIL)
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": user.lower(),
                "is_bot": False,
                "profile": {"email": email, "real_name": "On-call", "display_name": "oncall"},
            },
        }

    def _views_publish(self, args: Json) -> Json:
        """A Home tab view published for a user (`views.publish`), kept per user."""
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        user = str(args.get("user_id") or "")
        if not user or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        self.home_views[user] = view
        return {"ok": True, "view": {"id": "VHOME", **view}}

    def _usergroup_users(self, args: Json) -> Json:
        group = str(args.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}


_METHODS: dict[str, Callable[[FakeSlack, Json], Json]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "conversations.join": FakeSlack._join,
    "conversations.history": FakeSlack._history,
    "conversations.replies": FakeSlack._replies,
    "users.info": FakeSlack._users_info,
    "usergroups.users.list": FakeSlack._usergroup_users,
    "views.open": lambda _fake, args: _views_open(args),
    "views.publish": lambda fake, args: fake._views_publish(args),
}


def _views_open(args: Json) -> Json:
    """A modal opens when the click's trigger and a view are given (the view as slack-sdk sends it)."""
    view = args.get("view")
    if isinstance(view, str):
        view = json.loads(view)
    if not args.get("trigger_id") or not isinstance(view, dict) or view.get("type") != "modal":
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True, "view": {"id": "V1", **view}}


def block_kit_errors(args: Json) -> list[str]:
    """What slack-sdk's models refuse in a call's `blocks` (at most 50, each a known block within its
    limits) and `view` (a modal or Home tab within its limits, blocks included); [] when valid."""
    errors: list[str] = []
    try:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks) if blocks else []
        if blocks:
            if not isinstance(blocks, list) or len(blocks) > 50:
                errors.append(f"blocks must be a list of at most 50, got {len(blocks)}")
            for block in blocks if isinstance(blocks, list) else []:
                parsed = Block.parse(block)
                if parsed is None:
                    errors.append(f"not a block: {str(block)[:80]}")
                else:
                    parsed.to_dict()
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if view is not None:
            View(**view).to_dict()
    except (SlackObjectFormationError, ValueError, TypeError, KeyError) as error:
        errors.append(str(error)[:300])
    return errors


def _flag(value: Any) -> bool:
    """A boolean argument as slack-sdk sends it (`1`/`true` in a form, `true` in JSON)."""
    return value is True or str(value).lower() in ("1", "true")


def _make_cursor(ts: str) -> str:
    """Slack's history cursors are base64 of `next_ts:<ts without the dot>`."""
    return base64.b64encode(f"next_ts:{float(ts):.6f}".replace(".", "").encode()).decode()


def _cursor_ts(cursor: str) -> float | None:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, digits = text.partition(":")
    if prefix != "next_ts" or not digits.isdigit() or len(digits) <= 6:
        return None
    return float(f"{digits[:-6]}.{digits[-6:]}")


async def _parse(request: web.Request) -> tuple[Any, Json]:
    """The request's body as sent, and every argument (query, form, JSON) merged, JSON fields decoded."""
    args: Json = dict(request.query)
    body: Any = None
    raw = await request.read()
    ctype = request.content_type
    if raw:
        if ctype == "application/json":
            body = json.loads(raw)
            if isinstance(body, dict):
                args.update(body)
        elif ctype == "multipart/form-data":
            form = await request.post()
            body = {k: v for k, v in form.items() if isinstance(v, str)}
            args.update(body)
        else:
            body = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            args.update(body)
    for name in _JSON_FIELDS:
        value = args.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                args[name] = json.loads(value)
            except ValueError:
                pass
    return body, args


def _response_json(response: web.Response) -> Any:
    if response.body is None:
        return None
    raw = response.body if isinstance(response.body, bytes) else bytes(response.body)  # type: ignore[arg-type]
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _short(args: Json) -> str:
    text = json.dumps(args, default=str)
    return text if len(text) < 160 else text[:157] + "..."

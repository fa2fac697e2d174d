"""A local fake of Slack's Socket Mode on top of the fake Web API, so `serve` with SLACK_APP_TOKEN is tested
over real sockets.

As Slack does it (https://api.slack.com/apis/socket-mode): `apps.connections.open`, called with the
app-level token (`xapp-…`), answers a one-time `wss://` URL (here `ws://127.0.0.1:…`); on connecting the
app gets a `hello`, then envelopes (`slash_commands`, `events_api`, `interactive`), each acknowledged by
sending back `{"envelope_id": …}` (with a `payload` when the ack says something). Everything else, the
report's `chat.postMessage` calls included, goes to the Web API of `FakeSlack`. Used by
tests/process/test_socket_mode.py and by scripts/container-test (through scripts/container_check.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from tests.slack.fake_slack import TEAM_ID, Call, FakeSlack, Json, _parse

APP_ID = "A111"


class FakeSocketMode(FakeSlack):
    """`async with FakeSocketMode(app_token) as slack:` the fake Web API plus a Socket Mode server.

    `slash_command(...)` sends an envelope on the open connection (waiting for one) and returns its id;
    `wait_for_ack(id)` is the app's acknowledgement. `opened` counts `apps.connections.open` calls that
    were answered with a URL, `connected` the websockets that got their `hello`.
    """

    def __init__(self, app_token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_token = app_token
        self.opened = 0
        self.connected = 0
        self.acks: list[Json] = []
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._ws_runner: web.AppRunner | None = None
        self._ws_base: str | None = None
        self._socket_changed = asyncio.Condition()

    async def start(self) -> None:
        await super().start()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._ws_runner = runner
        self._ws_base = f"ws://127.0.0.1:{runner.addresses[0][1]}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._ws_runner is not None:
            await self._ws_runner.cleanup()
            self._ws_runner = None
        await super().stop()

    async def __aenter__(self) -> FakeSocketMode:
        await self.start()
        return self

    # --- apps.connections.open ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["method"] != "apps.connections.open":
            return await super()._api(request)
        at = time.monotonic()
        body, args = await _parse(request)
        call = Call("apps.connections.open", args, body, dict(request.headers), at)
        if call.authorization != f"Bearer {self.app_token}":
            # Slack answers a bot token (or none) here with not_allowed_token_type / not_authed
            payload: Json = {"ok": False, "error": "not_allowed_token_type"}
        else:
            ticket = f"ticket-{next(self._ids)}"
            self._tickets.add(ticket)
            self.opened += 1
            payload = {"ok": True, "url": f"{self._ws_base}/link/?ticket={ticket}&app_id={APP_ID}"}
        response = web.json_response(payload)
        call.status, call.response = 200, payload
        await self._record(call)
        return response

    # --- the websocket ---------------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # a URL is good for one connection, as Slack's
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            }
        )
        async with self._socket_changed:
            self._sockets.append(ws)
            self.connected += 1
            self._socket_changed.notify_all()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    answer = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(answer, dict) and answer.get("envelope_id"):
                    async with self._socket_changed:
                        self.acks.append(answer)
                        self._socket_changed.notify_all()
        finally:
            async with self._socket_changed:
                if ws in self._sockets:
                    self._sockets.remove(ws)
                self._socket_changed.notify_all()
        return ws

    async def wait_connected(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a test helper
        """Until the app holds an open websocket (it got its `hello`)."""
        async with self._socket_changed:
            try:
                await asyncio.wait_for(self._socket_changed.wait_for(lambda: bool(self._sockets)), timeout)
            except TimeoutError:
                seen = [(c.method, c.response) for c in self.calls]
                raise AssertionError(f"no Socket Mode connection within {timeout}s; calls: {seen}") from None

    async def slash_command(
        self,
        text: str,
        *,
        channel_id: str = "C111",
        user_id: str = "W111",
        response_url: str = "https://hooks.slack.com/commands/T111/111/xxxxx",
        command: str = "/purview-check",
    ) -> str:
        """A `slash_commands` envelope sent on the open connection; its envelope id."""
        await self.wait_connected()
        envelope_id = f"env-{next(self._ids)}-{int(time.time() * 1000)}"
        payload = {
            "token": "verification_token",
            "team_id": TEAM_ID,
            "team_domain": "contoso",
            "channel_id": channel_id,
            "channel_name": "data-platform",
            "user_id": user_id,
            "user_name": "oncall",
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{envelope_id}.trigger",
        }
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": "slash_commands",
            "accepts_response_payload": True,
        }
        await self._sockets[-1].send_json(envelope)
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> Json:  # noqa: ASYNC109
        """The app's acknowledgement of the envelope (`{"envelope_id": …, "payload": …}`)."""

        def found() -> Json | None:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)

        async with self._socket_changed:
            try:
                await asyncio.wait_for(self._socket_changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                acks = self.acks
                raise AssertionError(f"no ack of {envelope_id} within {timeout}s; acks: {acks}") from None
        ack = found()
        assert ack is not None
        return ack

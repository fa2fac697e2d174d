"""The bot's Slack Web API client: the configured base URL and token, retries that never post twice, and
every failed call logged with its method and counted (`purview_bot_slack_api_errors_total`).

Retries (slack-sdk's retry-handler API, restricted per method):
- what Slack did not take is retried for every method: a connection that could not be made (the request
  was never sent) and a 429 (Slack rejects it without acting), after its `Retry-After` when that is at
  most MAX_RETRY_AFTER seconds; a longer wait gives the call up at once (the caller says so);
- what may have been taken (a 5xx, a dropped connection) is retried only for idempotent methods (reads,
  `chat.update`, `chat.delete`, `conversations.join`); for the methods in POSTS
  (`chat.postMessage`, …) it is not: `handlers.slack.posting.post_message` first looks for the message in
  the channel before posting again.

Every failure reaches the caller as a `SlackApiError` whose text names the method and Slack's error code,
never the URL, host or port: an answer that is not JSON (an HTML 405/502 from a proxy) becomes
`http_<status>`, a call Slack did not answer becomes `slack_unreachable` (not sent) or `no_answer`
(sent, no answer: a timeout, a dropped connection), with HTTP status 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from handlers.slack.posting import NO_ANSWER, UNREACHABLE, retry_after_seconds

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
RETRIES = 2  # per kind: 429 (after Retry-After), 5xx and dropped connections (idempotent methods only)
MAX_RETRY_AFTER = 10.0  # seconds: a 429 asking for a longer wait is not retried
# Methods that create something: a retry after an answer that may hide success would post twice.
POSTS = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.scheduleMessage",
        "chat.meMessage",
        "files.upload",
        "files.completeUploadExternal",
    }
)
# Errors after which the request may have reached Slack (slack-sdk's connection-error list).
_MAYBE_SENT = (aiohttp.ServerConnectionError, aiohttp.ClientOSError)


class SlackErrorCounter(Protocol):
    def slack_api_error(self, method: str, error: str) -> None: ...


class SlackCallError(SlackApiError):
    """A failed Web API call, as slack-sdk raises it (`.response["error"]`, `.response.status_code`),
    with a text fit for a user: the method and Slack's error code, no URL, host or port."""

    def __init__(self, method: str, code: str, response: AsyncSlackResponse) -> None:
        super().__init__(f"Slack {method} failed: {code}", response)  # type: ignore[no-untyped-call]
        self.method = method
        self.code = code

    def __str__(self) -> str:
        if self.code in (NO_ANSWER, UNREACHABLE):
            return f"Slack did not answer {self.method}"
        return f"Slack {self.method} failed: {self.code}"


def api_method(request: HttpRequest) -> str:
    """`chat.postMessage` from `https://slack.com/api/chat.postMessage`."""
    return urlsplit(request.url).path.rsplit("/", 1)[-1]


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) and value else value)
    return None


class RateLimitRetry(AsyncRetryHandler):
    """429: retried after `Retry-After` (+ up to 0.5 s jitter) when that is at most `max_wait` seconds."""

    def __init__(self, max_retry_count: int = RETRIES, max_wait: float = MAX_RETRY_AFTER) -> None:
        super().__init__(max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(_header(response.headers, "Retry-After"))
        if wait > self.max_wait:
            log.warning(
                "Slack %s: rate limited for %.0f s (more than %.0f s): not retried",
                api_method(request),
                wait,
                self.max_wait,
            )
            return False
        return True

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None  # only called after _can_retry_async said yes
        wait = retry_after_seconds(_header(response.headers, "Retry-After"))
        state.next_attempt_requested = True
        await asyncio.sleep(wait + random.uniform(0, 0.5))
        state.increment_current_attempt()


class ServerErrorRetry(AsyncRetryHandler):
    """5xx: retried with backoff, except for the methods in POSTS (Slack may have acted)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if api_method(request) in POSTS:
            return False
        if response is not None:
            return response.status_code >= 500
        # a 5xx whose body claims to be JSON and is not: slack-sdk raises with the raw aiohttp response
        status = getattr(getattr(error, "response", None), "status", 0)
        return isinstance(error, SlackApiError) and isinstance(status, int) and status >= 500


class ConnectionErrorRetry(AsyncRetryHandler):
    """A connection that could not be made (nothing sent): retried for every method. A connection lost
    after the request may have been sent: retried only for the methods not in POSTS."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if isinstance(error, aiohttp.ClientConnectorError):
            return True
        return isinstance(error, _MAYBE_SENT) and api_method(request) not in POSTS


def error_code(response: Any) -> str:
    """Slack's error code in a failed answer, else `http_<status>`."""
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return str(code or f"http_{getattr(response, 'status_code', 0)}")


class ObservedWebClient(AsyncWebClient):
    """An AsyncWebClient that logs and counts each call that fails after the retries, and raises every
    failure as a SlackCallError (see the module's text)."""

    def __init__(self, *, counter: SlackErrorCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = counter

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            code = error_code(error.response)
            log.warning(
                "Slack %s failed: %s (HTTP %s)", api_method, code, getattr(error.response, "status_code", "?")
            )
            self._counter.slack_api_error(api_method, code)
            raise SlackCallError(api_method, code, error.response) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            code = UNREACHABLE if isinstance(error, aiohttp.ClientConnectorError) else NO_ANSWER
            log.warning("Slack %s failed: %s (%s)", api_method, code, type(error).__name__)
            self._counter.slack_api_error(api_method, code)
            raise SlackCallError(api_method, code, self._answer(api_method, code, 0, {})) from error

    async def _request(self, *, http_verb: str, api_url: str, req_args: dict[str, Any]) -> dict[str, Any]:
        """slack-sdk's request, with an answer that is not a Slack JSON object (an HTML or text error
        page from a proxy) turned into `{"ok": false, "error": "http_<status>"}`, so it fails as a
        SlackApiError with its HTTP status rather than breaking whoever reads it."""
        try:
            res: dict[str, Any] = await super()._request(
                http_verb=http_verb, api_url=api_url, req_args=req_args
            )
        except SlackApiError as error:
            if isinstance(error.response, AsyncSlackResponse):
                raise
            # a body that claims to be JSON and is not: raised with the raw aiohttp response
            status = getattr(error.response, "status", 0)
            headers = getattr(error.response, "headers", {})
            return {
                "data": {"ok": False, "error": f"http_{status}"},
                "headers": headers,
                "status_code": status,
            }
        data = res.get("data")
        if isinstance(data, bytes) or (isinstance(data, dict) and "ok" in data):
            return res
        return {**res, "data": {"ok": False, "error": f"http_{res.get('status_code', 0)}"}}

    def _answer(self, method: str, code: str, status: int, headers: dict[str, Any]) -> AsyncSlackResponse:
        return AsyncSlackResponse(
            client=self,
            http_verb="POST",
            api_url=method,
            req_args={},
            data={"ok": False, "error": code},
            headers=headers,
            status_code=status,
        )


def web_client(
    *, token: str | None, base_url: str, counter: SlackErrorCounter, max_retry_after: float = MAX_RETRY_AFTER
) -> ObservedWebClient:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return ObservedWebClient(
        counter=counter,
        token=token,
        base_url=base,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[
            RateLimitRetry(max_retry_count=RETRIES, max_wait=max_retry_after),
            ServerErrorRetry(max_retry_count=RETRIES),
            ConnectionErrorRetry(max_retry_count=RETRIES),
        ],
    )

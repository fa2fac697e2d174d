"""The bot's Slack Web API client: the configured base URL and token, slack-sdk's retry handlers, and
every failed call logged with its method and counted (`purview_bot_slack_api_errors_total`)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
RETRIES = 2  # per kind: 429 (after Retry-After), 5xx, connection errors


class SlackErrorCounter(Protocol):
    def slack_api_error(self, method: str, error: str) -> None: ...


class ObservedWebClient(AsyncWebClient):
    """An AsyncWebClient that logs and counts each call that fails after slack-sdk's retries."""

    def __init__(self, *, counter: SlackErrorCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = counter

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            code = str(error.response.get("error") or f"http_{error.response.status_code}")
            log.warning("Slack %s failed: %s", api_method, code)
            self._counter.slack_api_error(api_method, code)
            raise
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("Slack %s failed: %s", api_method, type(error).__name__)
            self._counter.slack_api_error(api_method, type(error).__name__)
            raise


def web_client(*, token: str | None, base_url: str, counter: SlackErrorCounter) -> ObservedWebClient:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return ObservedWebClient(
        counter=counter,
        token=token,
        base_url=base,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES),
        ],
    )

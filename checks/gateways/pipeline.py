"""One way to build azure-core pipelines and to run a call under a deadline with typed errors.

Every client shares the caller's `aiohttp.ClientSession` (one connection pool, one TLS trust store), uses
a modest retry budget (ARM throttling answers 429 + Retry-After; a persistent failure must end) and the
default HTTP logging policy, which redacts `Authorization`. A token never reaches a log line or an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
from azure.core import AsyncPipelineClient
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    AsyncHTTPPolicy,
    AsyncRetryPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    HttpLoggingPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.mgmt.core import AsyncARMPipelineClient
from azure.mgmt.core.policies import ARMHttpLoggingPolicy, AsyncARMChallengeAuthenticationPolicy

from checks.errors import CallTimeoutError, GatewayError, NotFoundError
from checks.gateways.api import Json

log = logging.getLogger(__name__)

USER_AGENT = "purview-bot/0.1"
MAX_PAGES = 200
MAX_MESSAGE = 300

T = TypeVar("T")
Client = AsyncPipelineClient[HttpRequest, AsyncHttpResponse]


@dataclass(frozen=True)
class RetrySettings:
    """azure-core retry knobs; tests shrink the backoff, production keeps a small total."""

    total: int = 4
    backoff_factor: float = 0.8
    backoff_max: float = 10.0

    def kwargs(self) -> dict[str, Any]:
        """As keyword arguments for an SDK client's configuration or `AsyncRetryPolicy`."""
        return {
            "retry_total": self.total,
            "retry_status": self.total,
            "retry_connect": min(self.total, 3),
            "retry_read": min(self.total, 3),
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
        }


class TokenUnavailable(Exception):
    """The bot's own credential gave no token: told apart from a service's 401 by `GuardedCredential`."""

    def __init__(self, scopes: tuple[str, ...], cause: BaseException) -> None:
        self.scopes = scopes
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(trim(first_line))


class GuardedCredential:
    """Wraps the caller's credential so that a failure to get a token surfaces as `TokenUnavailable`.

    Without it a credential's `ClientAuthenticationError` looks like a service's 401. It does not own the
    credential: `close` is a no-op (the caller closes it).
    """

    def __init__(self, inner: AsyncTokenCredential) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return await self._inner.get_token(*scopes, **kwargs)
        except Exception as exc:
            raise TokenUnavailable(scopes, exc) from exc

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> GuardedCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def transport(session: aiohttp.ClientSession) -> AioHttpTransport:
    """A transport on the shared session; closing it leaves the session open."""
    return AioHttpTransport(session=session, session_owner=False)


class CallObserver(Protocol):
    """Told about every HTTP request to Azure (each attempt, after auth): for metrics, outside `checks`."""

    def observe(self, plane: str, seconds: float, error_code: str | None) -> None: ...


@dataclass(frozen=True)
class Observation:
    """Which observer hears a client's requests, and their plane label (`arm`, `purview`, …)."""

    observer: CallObserver
    plane: str


class ObservingPolicy(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Times each attempt (after the retry policy, so a retried 429 counts; the authentication policy's
    token and Key Vault's challenge round trip are inside it) and reports its outcome: `None`, the Azure
    error code, the HTTP status or the exception's type. Never changes the request or the response; an
    observer's failure is only logged.
    """

    def __init__(self, observation: Observation) -> None:
        super().__init__()
        self._observation = observation

    async def send(
        self, request: PipelineRequest[HttpRequest]
    ) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        t0 = time.monotonic()
        try:
            response = await self.next.send(request)
        except asyncio.CancelledError:  # the call's or the diagnosis's deadline
            self._report(time.monotonic() - t0, "Cancelled")
            raise
        except Exception as exc:
            self._report(time.monotonic() - t0, type(exc).__name__)
            raise
        self._report(time.monotonic() - t0, _error_code(response.http_response))
        return response

    def _report(self, seconds: float, error_code: str | None) -> None:
        try:
            self._observation.observer.observe(self._observation.plane, seconds, error_code)
        except Exception:
            log.exception("call observer failed")


def _error_code(response: Any) -> str | None:
    """`None` below 400; else the Azure error code of a loaded body, or the HTTP status."""
    status = int(getattr(response, "status_code", 0) or 0)
    if status < 400:
        return None
    try:
        code, _ = parse_error(response.text())
    except Exception:  # a streamed body not loaded yet: the status says enough
        code = None
    return code or str(status)


def _policies(
    auth: Any, retry: RetrySettings, logging_policy: HttpLoggingPolicy, observation: Observation | None
) -> list[Any]:
    observing = [ObservingPolicy(observation)] if observation is not None else []
    return [
        HeadersPolicy(),
        UserAgentPolicy(user_agent=USER_AGENT),
        ContentDecodePolicy(),
        AsyncRetryPolicy(**retry.kwargs()),
        *observing,  # where azure-core puts `per_retry_policies` of SDK clients: the same view for all
        auth,
        logging_policy,
    ]


def pipeline_client(
    base_url: str,
    credential: AsyncTokenCredential,
    scope: str,
    session: aiohttp.ClientSession,
    retry: RetrySettings,
    observation: Observation | None = None,
) -> Client:
    """A bearer-token pipeline for a data plane (Purview scanning, Microsoft Graph)."""
    auth = AsyncBearerTokenCredentialPolicy(credential, scope)
    return AsyncPipelineClient(
        base_url.rstrip("/"),
        policies=_policies(auth, retry, HttpLoggingPolicy(), observation),
        transport=transport(session),
    )


def arm_pipeline_client(
    base_url: str,
    credential: AsyncTokenCredential,
    scope: str,
    session: aiohttp.ClientSession,
    retry: RetrySettings,
    observation: Observation | None = None,
) -> Client:
    """A pipeline for generic ARM reads (ARM's claims challenge handled by its policy)."""
    auth = AsyncARMChallengeAuthenticationPolicy(credential, scope)
    client: Client = AsyncARMPipelineClient(
        base_url.rstrip("/"),
        policies=_policies(auth, retry, ARMHttpLoggingPolicy(), observation),
        transport=transport(session),
    )
    return client


def sdk_options(
    session: aiohttp.ClientSession, retry: RetrySettings, observation: Observation | None = None
) -> dict[str, Any]:
    """Keyword arguments that give an Azure SDK client the same transport, retries and user agent
    (and, observed, the `ObservingPolicy` after its retry policy)."""
    options: dict[str, Any] = {"transport": transport(session), "user_agent": USER_AGENT, **retry.kwargs()}
    if observation is not None:
        options["per_retry_policies"] = [ObservingPolicy(observation)]
    return options


# --- running one call ------------------------------------------------------------------------------
def trim(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error(body: str) -> tuple[str | None, str]:
    """`(code, message)` of an Azure error body; the innermost `innererror.code` is the most specific.

    Key Vault says `Forbidden` at the top and `ForbiddenByRbac` / `AccessDenied` / `ForbiddenByFirewall`
    inside: the inner one is what tells the fixes apart.
    """
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return None, trim(body)
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return None, trim(body) if body else ""
    code = error.get("code") or None
    inner = error.get("innererror") or error.get("innerError")
    while isinstance(inner, dict):
        if inner.get("code"):
            code = inner["code"]
        inner = inner.get("innererror") or inner.get("innerError")
    return (str(code) if code else None), trim(str(error.get("message") or ""))


@dataclass(frozen=True)
class Call:
    """A call as a person reads it, and what the bot's identity needs for it."""

    label: str
    permission: str | None = None

    def error(self, status: int | None, body: str) -> GatewayError:
        code, message = parse_error(body)
        cls = NotFoundError if status == 404 else GatewayError
        return cls(self.label, status=status, code=code, message=message, permission=self.permission)


async def raise_for_status(call: Call, response: AsyncHttpResponse) -> None:
    """Turn a final (post-retry) error response into a typed error."""
    if response.status_code < 400:
        return
    try:
        body = (await response.read()).decode("utf-8", "replace")
    except Exception:  # the body is a nicety; the status alone is enough to report
        body = ""
    raise call.error(response.status_code, body)


def _sdk_error(call: Call, exc: HttpResponseError) -> GatewayError:
    body = ""
    if exc.response is not None:
        try:
            body = exc.response.text()
        except Exception:  # a streamed or unread body: fall back to the SDK's own message
            body = ""
    if not body:
        code = getattr(exc.error, "code", None) if exc.error else None
        body = json.dumps({"error": {"code": code, "message": exc.message}})
    return call.error(exc.status_code, body)


async def guarded(call: Call, seconds: float, op: Callable[[], Awaitable[T]]) -> T:
    """Run one gateway call under its deadline; every failure leaves as a `GatewayError` subtype."""
    try:
        async with asyncio.timeout(seconds):
            return await op()
    except GatewayError:
        raise
    except TimeoutError:
        raise CallTimeoutError(call.label, seconds) from None
    except TokenUnavailable as exc:
        scopes = " ".join(exc.scopes) or "the service"
        raise GatewayError(
            call.label,
            code="CredentialUnavailable",
            message=f"the bot's credential could not get a token for {scopes}: {exc}",
        ) from exc
    except HttpResponseError as exc:
        raise _sdk_error(call, exc) from exc
    except AzureError as exc:  # ServiceRequestError, ServiceResponseError, their timeouts
        raise GatewayError(call.label, code=type(exc).__name__, message=trim(str(exc.message))) from exc


# --- reading JSON and pages ---------------------------------------------------------------------------
async def send_json(
    client: Client,
    call: Call,
    method: str,
    url: str,
    params: Mapping[str, str] | None = None,
) -> Json:
    request = HttpRequest(method, url, params=dict(params or {}))
    if method == "POST":
        request.headers["Content-Length"] = "0"
    response = await client.send_request(request)
    await raise_for_status(call, response)
    try:
        doc = response.json()
    except ValueError:
        raise GatewayError(
            call.label, status=response.status_code, message="the answer is not JSON"
        ) from None
    if not isinstance(doc, dict):
        raise GatewayError(call.label, status=response.status_code, message="the answer is not a JSON object")
    return doc


def with_api_version(link: str, api_version: str | None) -> tuple[str, dict[str, str]]:
    """A next link as given, plus `api-version` when the service left it out (and one is used)."""
    if api_version is None:
        return link, {}
    query = {k.lower() for k, _ in parse_qsl(urlsplit(link).query, keep_blank_values=True)}
    return link, ({} if "api-version" in query else {"api-version": api_version})


def page_items(doc: Json) -> list[Json]:
    """`value` of a page; a single object under `value` (as one published run example has) counts as one."""
    value = doc.get("value")
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


async def get_pages(
    client: Client,
    call: Call,
    url: str,
    api_version: str | None,
    *,
    method: str = "GET",
    params: Mapping[str, str] | None = None,
    next_key: str = "nextLink",
) -> list[Json]:
    """Every item of a paged list, following `next_key` until it is empty; a link seen twice ends it.
    `api_version` None: a service without one (Microsoft Graph, `@odata.nextLink`).

    A relative link is resolved against the list's URL; a link to another host is not followed (the
    bearer token goes only where the list came from).
    """
    version = {"api-version": api_version} if api_version is not None else {}
    doc = await send_json(client, call, method, url, {**version, **(params or {})})
    items = page_items(doc)
    seen: set[str] = set()
    origin = urlsplit(url)[:2]
    while (link := doc.get(next_key)) and isinstance(link, str):
        link = urljoin(url, link)
        if urlsplit(link)[:2] != origin:
            log.warning("%s: not following a next link to another host", call.label)
            break
        if link in seen or len(seen) >= MAX_PAGES:
            log.warning("%s: stopped paging at a repeated or %d-th next link", call.label, len(seen))
            break
        seen.add(link)
        next_url, extra = with_api_version(link, api_version)
        doc = await send_json(client, call, method, next_url, extra)
        items.extend(page_items(doc))
    return items

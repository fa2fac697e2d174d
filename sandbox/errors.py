"""Error bodies in each plane's own format, so clients map them to the same exceptions as with Azure."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.recording import HostArea


class ApiError(Exception):
    """Raised by a route to answer with an error body in the plane's format."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_body(area: HostArea, code: str, message: str, inner_code: str | None = None) -> dict[str, Any]:
    if area == "token":
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": code,
            "error_description": message,
            "error_codes": [],
            "timestamp": now,
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_code:
        error["innererror"] = {"code": inner_code}
    if area == "graph":
        error["innerError"] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4()),
        }
    return {"error": error}


def error_response(area: HostArea, err: ApiError) -> web.Response:
    return json_response(
        error_body(area, err.code, err.message, err.inner_code), status=err.status, headers=err.headers
    )


_FAULT_CODES: dict[HostArea, dict[int, str]] = {
    "token": {429: "temporarily_unavailable", 500: "server_error", 503: "temporarily_unavailable"},
    "arm": {403: "AuthorizationFailed", 404: "ResourceNotFound", 409: "Conflict"},
    "purview": {403: "Unauthorized"},
    "keyvault": {403: "Forbidden", 429: "Throttled"},
    "graph": {403: "Authorization_RequestDenied", 404: "Request_ResourceNotFound"},
}
_GENERIC_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def fault_code(area: HostArea, status: int) -> str:
    """The error code a plane typically uses for a status (429 → TooManyRequests on ARM, …)."""
    if area == "token":
        return _FAULT_CODES["token"].get(status, "invalid_request")
    return _FAULT_CODES[area].get(status) or _GENERIC_CODES.get(status, "Error")

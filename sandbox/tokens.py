"""Access tokens: unsigned-looking JWTs carrying the audience, HMAC-signed with a per-sandbox key.

Each plane checks the audience it expects, as Azure does, so a client that asks for the wrong scope gets
the same 401 it would get from the real service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

TOKEN_LIFETIME = 3599


@dataclass(frozen=True)
class Claims:
    audience: str
    tenant_id: str
    object_id: str
    app_id: str
    expires: int


def audience_of_scope(scope: str) -> str:
    """`https://management.azure.com/.default` → `https://management.azure.com` (also `…//.default`)."""
    first = scope.split()[0] if scope.split() else ""
    for suffix in ("/.default", "/user_impersonation"):
        if first.endswith(suffix):
            first = first[: -len(suffix)]
            break
    return normalise_audience(first)


def normalise_audience(audience: str) -> str:
    return audience.rstrip("/").lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies tokens for one sandbox instance (tokens of another instance are rejected)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, *, audience: str, tenant_id: str, object_id: str, app_id: str) -> str:
        header = {"typ": "JWT", "alg": "HS256", "kid": "sandbox"}
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "tid": tenant_id,
            "oid": object_id,
            "appid": app_id,
            "sub": object_id,
            "uti": uuid.uuid4().hex,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str) -> Claims | None:
        """The token's claims, or None when it is malformed, forged or expired."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            payload = json.loads(_unb64(parts[1]))
        except (ValueError, json.JSONDecodeError):
            return None
        if int(payload.get("exp", 0)) < time.time():
            return None
        return Claims(
            audience=str(payload["aud"]),
            tenant_id=str(payload["tid"]),
            object_id=str(payload["oid"]),
            app_id=str(payload["appid"]),
            expires=int(payload["exp"]),
        )

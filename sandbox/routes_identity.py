"""Entra ID: the client-credentials token endpoint (plus discovery documents, for clients that ask)."""

from __future__ import annotations

import uuid

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.tokens import TOKEN_LIFETIME, audience_of_scope


async def handle(ctx: Context, request: web.Request) -> web.Response:
    parts = request.path.strip("/").split("/")
    tenant = parts[0]
    rest = "/".join(parts[1:])
    if rest == "oauth2/v2.0/token" and request.method == "POST":
        _check_tenant(ctx, tenant)
        return await _token(ctx, request)
    if rest == "v2.0/.well-known/openid-configuration" and request.method == "GET":
        _check_tenant(ctx, tenant)
        return json_response(_openid_configuration(ctx))
    if rest == "discovery/instance" and request.method == "GET":
        return json_response(
            {
                "tenant_discovery_endpoint": f"{ctx.base_url}/{ctx.world.tenant_id}"
                "/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": "127.0.0.1", "aliases": ["127.0.0.1"]}],
            }
        )
    raise ApiError(404, "invalid_request", f"AADSTS900561: The endpoint '{request.path}' is not served here.")


def _check_tenant(ctx: Context, tenant: str) -> None:
    if tenant.lower() not in (ctx.world.tenant_id.lower(), "organizations", "common"):
        raise ApiError(
            400,
            "invalid_request",
            f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
        )


async def _token(ctx: Context, request: web.Request) -> web.Response:
    form = await request.post()
    grant_type = str(form.get("grant_type", ""))
    client_id = str(form.get("client_id", ""))
    scope = str(form.get("scope", ""))
    if grant_type != "client_credentials":
        raise ApiError(
            400,
            "unsupported_grant_type",
            f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.",
        )
    if not client_id:
        raise ApiError(400, "invalid_request", "AADSTS900144: The request body must contain 'client_id'.")
    if not form.get("client_secret") and not form.get("client_assertion"):
        raise ApiError(
            401,
            "invalid_client",
            "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.",
        )
    audience = audience_of_scope(scope)
    if not audience:
        raise ApiError(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
    principal = next(
        (p for p in ctx.world.principals if p.app_id and p.app_id.lower() == client_id.lower()), None
    )
    object_id = principal.id if principal else str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{client_id}"))
    token = ctx.issuer.issue(
        audience=audience, tenant_id=ctx.world.tenant_id, object_id=object_id, app_id=client_id
    )
    return json_response(
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }
    )


def _openid_configuration(ctx: Context) -> dict[str, object]:
    base = f"{ctx.base_url}/{ctx.world.tenant_id}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "tenant_region_scope": "WW",
        "cloud_instance_name": "127.0.0.1",
    }

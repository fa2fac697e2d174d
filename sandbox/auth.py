"""Bearer-token checks per plane, with each service's own 401 body (and Key Vault's challenge header)."""

from __future__ import annotations

from sandbox.context import Context
from sandbox.errors import ApiError
from sandbox.recording import HostArea
from sandbox.tokens import normalise_audience

AUDIENCES: dict[HostArea, tuple[str, ...]] = {
    "arm": ("https://management.azure.com", "https://management.core.windows.net"),
    "purview": ("https://purview.azure.net",),
    "keyvault": ("https://vault.azure.net",),
    "graph": ("https://graph.microsoft.com",),
}


def authorize(ctx: Context, area: HostArea, header: str) -> None:
    """Return when `header` carries a valid token for `area`'s audience; raise the plane's 401 otherwise."""
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized(ctx, area, "missing")
    claims = ctx.issuer.verify(token.strip()) if scheme.lower() == "bearer" else None
    if claims is None or claims.tenant_id.lower() != ctx.world.tenant_id.lower():
        raise unauthorized(ctx, area, "invalid")
    if normalise_audience(claims.audience) not in {normalise_audience(a) for a in AUDIENCES[area]}:
        raise unauthorized(ctx, area, "audience", claims.audience)


def unauthorized(ctx: Context, area: HostArea, why: str, audience: str = "") -> ApiError:
    """`why` is missing | invalid | audience."""
    tenant = ctx.world.tenant_id
    if area == "keyvault":
        messages = {
            "missing": "AKV10000: Request is missing a Bearer or PoP token.",
            "invalid": "AKV10032: Invalid issuer or signature.",
            "audience": f"AKV10022: Invalid audience. Expected https://vault.azure.net, found: {audience}.",
        }
        challenge = f'Bearer authorization="{ctx.base_url}/{tenant}", resource="https://vault.azure.net"'
        return ApiError(401, "Unauthorized", messages[why], headers={"WWW-Authenticate": challenge})
    if area == "arm":
        codes = {
            "missing": (
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            ),
            "invalid": ("InvalidAuthenticationToken", "The access token is invalid."),
            "audience": (
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{audience}'. "
                "It should exactly match with one of the allowed audiences "
                "'https://management.core.windows.net/','https://management.azure.com/'.",
            ),
        }
        code, message = codes[why]
        challenge = (
            f'Bearer authorization_uri="{ctx.base_url}/{tenant}", error="invalid_token", '
            f'error_description="{message}"'
        )
        return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})
    if area == "graph":
        messages = {
            "missing": "Access token is empty.",
            "invalid": "Access token validation failure.",
            "audience": "Access token validation failure. Invalid audience.",
        }
        return ApiError(401, "InvalidAuthenticationToken", messages[why])
    messages = {
        "missing": "Authorization header is missing.",
        "invalid": "The access token is invalid.",
        "audience": f"The access token audience '{audience}' is not https://purview.azure.net.",
    }
    return ApiError(401, "Unauthorized", messages[why])

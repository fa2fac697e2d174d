"""Per-sandbox state the routes read: the world with its lookup indices, the base URL and the token issuer.

One object per running sandbox (never module state), built once its URL is known.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from sandbox.scopes import normalise, resource_parts
from sandbox.tokens import TokenIssuer
from sandbox.world import Json, Principal, World


@dataclass(frozen=True)
class ResourceGroup:
    subscription_id: str
    name: str
    location: str


@dataclass
class Context:
    world: World
    base_url: str
    issuer: TokenIssuer
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    resources: dict[str, Json] = field(init=False)
    principals: dict[str, Principal] = field(init=False)
    subscriptions: dict[str, str] = field(init=False)
    """lower-case subscription id → display name, from the world list plus every resource id."""
    resource_groups: dict[str, ResourceGroup] = field(init=False)
    """`/subscriptions/s/resourcegroups/rg` (lower case) → the group, derived from resource ids."""
    builtin_roles: dict[str, Json] = field(init=False)
    """lower-case role GUID → `{id, roleName, permissions}` from the product's bundled built-in roles."""

    def __post_init__(self) -> None:
        self.resources = {r["id"].lower(): r for r in self.world.resources}
        self.principals = {p.id.lower(): p for p in self.world.principals}
        self.subscriptions = {s.subscription_id.lower(): s.display_name for s in self.world.subscriptions}
        self.resource_groups = {}
        for resource in self.world.resources:
            parts = resource_parts(resource["id"])
            if parts is None:
                continue
            sub, rg, _ = parts
            self.subscriptions.setdefault(sub.lower(), sub)
            key = normalise(f"/subscriptions/{sub}/resourceGroups/{rg}")
            self.resource_groups.setdefault(key, ResourceGroup(sub, rg, str(resource.get("location", ""))))
        self.builtin_roles = {str(r["id"]).lower(): r for r in _builtin_roles()}

    @property
    def now(self) -> datetime:
        return self.world.now or self.started_at

    def now_iso(self) -> str:
        return self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def subscription_name(self, subscription_id: str) -> str:
        return self.subscriptions.get(subscription_id.lower(), subscription_id)

    def groups_of(self, principal_id: str) -> set[str]:
        """Lower-case ids of every group the principal belongs to, transitively (cycles are harmless)."""
        seen: set[str] = set()
        pending = [principal_id.lower()]
        while pending:
            current = self.principals.get(pending.pop())
            for group in current.member_of if current else ():
                if group.lower() not in seen:
                    seen.add(group.lower())
                    pending.append(group.lower())
        return seen

    def vault_url(self, real_url: str) -> str:
        """`https://NAME.vault.azure.net/` → `{base}/kv/NAME/` (the vault name is the host's first label)."""
        host = urlsplit(real_url).hostname or ""
        if not host or host in ("127.0.0.1", "localhost"):
            return real_url
        return f"{self.base_url}/kv/{host.split('.')[0]}/"

    def with_vault_urls(self, document: Json, *path: str) -> Json:
        """A deep copy of `document` whose URL at `path` (e.g. properties.vaultUri) points at the sandbox."""
        doc = copy.deepcopy(document)
        holder: Any = doc
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(path[-1]), str):
            holder[path[-1]] = self.vault_url(holder[path[-1]])
        return doc


def _builtin_roles() -> list[Json]:
    """The same built-in role file the product bundles, so both sides agree on every permission."""
    text = (resources.files("checks") / "data" / "builtin-roles.json").read_text(encoding="utf-8")
    roles: list[Json] = json.loads(text)
    return roles

"""A Purview account as configured: `PURVIEW_ACCOUNTS` entries are names or ARM ids, and everything that
names, matches or looks up an account goes through `AccountRef`, so the rule is written once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def arm_name(resource_id: str) -> str:
    """The last segment of an ARM id (the resource's own name); a plain name is returned as it is."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AccountRef:
    """One configured account: `configured` as written (a name or an ARM id), `name` the account's name."""

    configured: str

    @property
    def name(self) -> str:
        return arm_name(self.configured)

    def matches(self, requested: str) -> bool:
        """`requested` is this account: its name or its configured entry, in any case."""
        wanted = requested.lower()
        return wanted in (self.configured.lower(), self.name.lower())

    @staticmethod
    def resolve(requested: str | None, accounts: Sequence[str]) -> AccountRef | None:
        """The configured account `requested` names (the first, the default, when None); None when
        nothing is configured or no entry matches."""
        refs = [AccountRef(a) for a in accounts]
        if requested is None:
            return refs[0] if refs else None
        return next((ref for ref in refs if ref.matches(requested)), None)

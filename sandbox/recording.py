"""What the sandbox saw, one record per request: tests assert on traffic (no URL twice, no value read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HostArea = Literal["token", "arm", "purview", "keyvault", "graph"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    host_area: HostArea
    authorized: bool
    started: float
    """`time.monotonic()` when the request arrived."""
    duration: float = 0.0
    secret_value: bool = False
    """True when the request read a Key Vault secret *value* (the product must never do that)."""
    faulted: bool = False

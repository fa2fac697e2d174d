"""The shape every check module has (Prowler style: one check, one module, metadata beside the code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from checks.model import Finding
from checks.target import Target


@dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    sections: tuple[str, ...]
    description: str


RunCheck = Callable[[Target], Awaitable[list[Finding]]]


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    run: RunCheck

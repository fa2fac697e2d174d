"""Fault and latency injection: which requests fail or stall, counting down `times` per fault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.world import FaultSpec, parse_fault


@dataclass
class _ActiveFault:
    spec: FaultSpec
    remaining: int | None


class FaultBook:
    """The faults of one sandbox; each fault is consumed by the requests it hits until `times` runs out."""

    def __init__(self, specs: Iterable[FaultSpec] = ()) -> None:
        self._faults = [_ActiveFault(s, s.times) for s in specs]

    def add(self, fault: FaultSpec | Mapping[str, Any]) -> None:
        spec = fault if isinstance(fault, FaultSpec) else parse_fault(fault)
        self._faults.append(_ActiveFault(spec, spec.times))

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str, query: str, raw_query: str) -> FaultSpec | None:
        """The first live fault matching the request (consuming one of its `times`), or None.

        The pattern is searched in the bare path and in `path?query`, with the query both decoded and as
        sent, so `salesadls$` and `\\$filter=atScope\\(\\)` both work.
        """
        targets = [path, *(f"{path}?{q}" for q in dict.fromkeys((query, raw_query)) if q)]
        for fault in self._faults:
            if fault.remaining == 0:
                continue
            if fault.spec.method and fault.spec.method != method.upper():
                continue
            if any(fault.spec.path.search(t) for t in targets):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault.spec
        return None

"""Which integration runtime a scan runs on, as named by its `connectedVia`."""

from __future__ import annotations

import re

from checks.gateways.api import Json

# The default Azure IR: `connectedVia` null, or (as the portal shows it) the auto-resolve runtime's name.
# Such a name is not a Purview integration runtime resource, so it must not be looked up as one.
_AZURE_IR = re.compile(r"^(azure\s*)?auto-?resolve(\s*integration\s*runtime)?$", re.IGNORECASE)


def scan_runtime_name(scan: Json) -> str | None:
    """The Purview integration runtime a scan names, or None when it runs on the default Azure IR."""
    via = (scan.get("properties") or {}).get("connectedVia")
    name = via.get("referenceName") if isinstance(via, dict) else None
    if not name or _AZURE_IR.match(str(name).strip()):
        return None
    return str(name)

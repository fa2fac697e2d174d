"""runtime-host: problems of the self-hosted integration runtime's machine, told by the scan's error text.

The bot cannot see the VM, but a self-hosted runtime's errors name their cause precisely. Decided on the
scan's newest finished run (a success since means the host was fixed), each with the exact fix on the
machine, as Microsoft documents it for Purview's self-hosted runtime
(https://learn.microsoft.com/en-us/purview/manage-integration-runtimes):
- Java missing: Parquet and ORC files are parsed with Java (`UserErrorJreNotFound`, `jvm.dll`): install a
  64-bit JRE or OpenJDK on every node;
- FIPS mode: "FIPS mode is not currently supported for SHIR machines";
- a TLS-inspecting proxy or an untrusted certificate (`could not establish trust relationship`,
  `PKIX path building failed`): trust the proxy's root or exempt the endpoints (a `warn`: the certificate
  may be the source's own);
- a node that expired or needs registering again (`NeedRegistration`, an invalid authentication key);
- outbound endpoints blocked (`*.servicebus.windows.net`, `*.frontend.clouddatahub.net`, "Networking
  requirements");
- a runtime older than the version a feature needs: the error's minimum against the runtime's `version`
  (integration runtime status, read only then).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from checks import classify, sections
from checks.catalogue import scan_history
from checks.check import Check, CheckMeta
from checks.classify import AZURE_IR, MANAGED_VNET_IR, error_text, runtime_kind
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.runtimes import scan_runtime_name
from checks.target import Target

META = CheckMeta(
    id="runtime-host",
    title="Self-hosted integration runtime machine",
    sections=(sections.RUNTIME_HOST,),
    description=(
        "From the scan's newest run error: Java missing for Parquet/ORC, FIPS mode, a TLS-inspecting proxy "
        "or untrusted certificate, an expired node or one to register again, blocked outbound endpoints, "
        "or a runtime older than a feature needs, each with the fix on the machine."
    ),
)

SERVICE_RESTART = "Restart-Service -Name DIAHostService"
DMGCMD = r'& "C:\Program Files\Microsoft Integration Runtime\5.0\Shared\dmgcmd.exe"'
SHIR_DOWNLOAD = "https://www.microsoft.com/download/details.aspx?id=39717"
DOCS = "https://learn.microsoft.com/en-us/purview/manage-integration-runtimes"

# Causes: checks/classify.py's, whose rules share these patterns (FIPS keeps the classifier's older rule).
JRE_MISSING = classify.SHIR_JRE_MISSING
FIPS_MODE = "shir-fips-mode"
TLS_TRUST = classify.SHIR_TLS_TRUST
NODE_REGISTRATION = classify.SHIR_NODE_REGISTRATION
OUTBOUND_BLOCKED = classify.SHIR_OUTBOUND_BLOCKED
VERSION_TOO_OLD = classify.SHIR_VERSION_TOO_OLD


@dataclass(frozen=True)
class HostProblem:
    cause: str
    status: Status
    headline: str
    explanation: str
    patterns: tuple[str, ...]
    fix: tuple[str, ...]
    # words the error must also hold for `status` to stand; without them the text only names the thing
    # (a host name, "FIPS") and the finding is a `warn`
    confirm: str | None = None


# A failed connection, in .NET's and Java's words: a host name alone says where, not that it was blocked.
_CONNECT_FAILED = (
    r"(?:unable|failed|could\s+not|cannot|can't)\s+(?:to\s+)?(?:connect|reach|open\s+a\s+connection)"
    r"|forbidden\s+by\s+its\s+access\s+permissions|actively\s+refused|connection\s+(?:was\s+)?"
    r"(?:refused|reset|timed?\s*out)|timed?\s*out|unreachable|\bblocked\b"
)

PROBLEMS: tuple[HostProblem, ...] = (
    HostProblem(
        JRE_MISSING,
        Status.FAIL,
        "Java is not installed on the runtime machine (needed for Parquet/ORC)",
        "the self-hosted runtime parses Parquet and ORC files with Java and found no 64-bit Java runtime "
        "(JRE or OpenJDK) on the machine",
        classify.JRE_MISSING_PATTERNS,
        (
            "winget install --id Microsoft.OpenJDK.17 --exact --accept-package-agreements",
            "On every node, set JAVA_HOME to the JDK folder (System Properties > Environment Variables > "
            f"System variables), then restart the runtime service; see {DOCS}#prerequisites.",
            SERVICE_RESTART,
        ),
    ),
    HostProblem(
        FIPS_MODE,
        Status.FAIL,
        "FIPS mode is on on the runtime machine (not supported)",
        "Windows FIPS mode is on, which Purview's self-hosted runtime does not support",
        (r"FIPS\s+validated", r"\bFIPS\b"),
        (
            r"Set-ItemProperty -Path HKLM:\System\CurrentControlSet\Control\Lsa\FipsAlgorithmPolicy "
            "-Name Enabled -Value 0",
            "If a group policy sets it (System cryptography: Use FIPS compliant algorithms), exempt the "
            "runtime machine from it, or move the runtime to a machine without it.",
            SERVICE_RESTART,
        ),
        confirm=r"FIPS\s+validated|FIPS[\s-]+(?:mode|compliant)",
    ),
    HostProblem(
        NODE_REGISTRATION,
        Status.FAIL,
        "the runtime node has expired or must be registered again",
        "the runtime's node is no longer registered with Purview (it expired, or its authentication key "
        "was regenerated)",
        classify.NODE_REGISTRATION_PATTERNS,
        (
            "In the Microsoft Purview portal (https://web.purview.azure.com), Data Map > Integration "
            "runtimes > the runtime > Edit: copy an authentication key (or regenerate one).",
            f'{DMGCMD} -RegisterNewNode "<authentication key>"',
            SERVICE_RESTART,
        ),
    ),
    HostProblem(
        TLS_TRUST,
        Status.WARN,
        "the runtime machine does not trust a TLS certificate (inspecting proxy?)",
        "a TLS certificate on the way was not trusted by the runtime machine: most often a proxy that "
        "inspects TLS and re-signs traffic with its own root, sometimes the source's own certificate",
        classify.TLS_TRUST_PATTERNS,
        (
            "Exempt *.servicebus.windows.net, *.frontend.clouddatahub.net, *.purview.azure.com and the "
            "source's host from TLS inspection on the proxy (Proxy server considerations: "
            f"{DOCS}#proxy-server-considerations).",
            r"Import-Certificate -FilePath .\proxy-root.cer -CertStoreLocation Cert:\LocalMachine\Root",
            SERVICE_RESTART,
        ),
    ),
    HostProblem(
        OUTBOUND_BLOCKED,
        Status.FAIL,
        "the runtime machine cannot reach Purview's endpoints (outbound blocked)",
        "the runtime machine cannot open outbound HTTPS to Purview's relay and data-movement endpoints",
        classify.OUTBOUND_BLOCKED_PATTERNS,
        (
            "Allow outbound TCP 443 from the runtime machine to *.servicebus.windows.net, "
            "*.frontend.clouddatahub.net, login.microsoftonline.com and the account's *.purview.azure.com "
            f"endpoints in the firewall or proxy (Networking requirements: {DOCS}#networking-requirements).",
            "If the Purview account's public network access is disabled, the runtime reaches these through "
            "the account's private endpoints instead: see the private-endpoint findings of this report.",
            "Test-NetConnection -ComputerName <name from the error>.servicebus.windows.net -Port 443",
        ),
        confirm=_CONNECT_FAILED,
    ),
)

VERSION_NEEDED = re.compile(classify.VERSION_NEEDED_PATTERN, re.IGNORECASE)


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return None


def recognise(text: str) -> tuple[HostProblem, str] | None:
    """The first host problem an error text names, with the words that name it."""
    for problem in PROBLEMS:
        for pattern in problem.patterns:
            found = re.search(pattern, text, re.IGNORECASE)
            if found:
                return problem, found.group(0)
    return None


def _run_evidence(run: Json) -> dict[str, Any]:
    return {"id": run.get("id"), "status": run.get("status"), "endTime": run.get("endTime")}


def judge_text(scan: str, runtime: str, run: Json, text: str, version: str | None) -> Finding | None:
    """The finding for a failed run's error text; None when it names no host problem."""
    title = f"Scan {scan}: self-hosted integration runtime {runtime}"
    base = {"integrationRuntime": runtime, "run": _run_evidence(run)}
    needed = VERSION_NEEDED.search(text)
    if needed:
        return _judge_version(title, scan, runtime, base, needed, version)
    found = recognise(text)
    if found is None:
        return None
    problem, matched = found
    sure = problem.confirm is None or re.search(problem.confirm, text, re.IGNORECASE) is not None
    detail = (
        f"The newest run failed with \u201c{matched}\u201d: {problem.explanation}. The bot cannot "
        f"see the machine: apply the fix on every node of runtime {runtime}, then run the scan again."
    )
    if not sure:
        detail = (
            f"The newest run's error names \u201c{matched}\u201d but does not say plainly that this is the "
            f"cause; if it is, {problem.explanation}. Check on the machine before applying the fix on "
            f"every node of runtime {runtime}."
        )
    return META.finding(
        problem.status if sure else Status.WARN,
        f"{title}: {problem.headline}" if sure else f"{title}: maybe {problem.headline}",
        detail=detail,
        fix=problem.fix,
        evidence={**base, "cause": problem.cause, "matched": matched, "confirmed": sure},
        scan=scan,
    )


def _judge_version(
    title: str, scan: str, runtime: str, base: dict[str, Any], needed: re.Match[str], version: str | None
) -> Finding:
    minimum = needed.group(1)
    evidence = {**base, "cause": VERSION_TOO_OLD, "matched": needed.group(0), "minimumVersion": minimum}
    fix = [
        f"Download the latest self-hosted integration runtime from {SHIR_DOWNLOAD} and install it on "
        f"every node of {runtime} (it upgrades in place).",
        "In the Microsoft Purview portal (https://web.purview.azure.com), Data Map > Integration runtimes > "
        f"{runtime} > Auto update: On.",
    ]
    have, want = _version(version or ""), _version(minimum)
    if version:
        evidence["version"] = version
    if have is not None and want is not None and have >= want:
        return META.finding(
            Status.PASS,
            f"{title} runs {version}, at least the {minimum} a feature needed",
            detail=(
                f"The newest run asked for version {minimum} or later; the runtime now reports {version}: "
                "run the scan again."
            ),
            evidence=evidence,
            scan=scan,
        )
    running = f"runs {version}" if version else "does not report its version"
    return META.finding(
        Status.FAIL if have is not None else Status.WARN,
        f"{title} {running}; the scan needs {minimum} or later",
        detail=(
            f"The newest run failed asking for runtime version {minimum} or later; runtime {runtime} "
            f"{running}."
        ),
        fix=fix,
        evidence=evidence,
        scan=scan,
    )


async def _version_of(target: Target, runtime: str) -> str | None:
    try:
        status = await target.facts.integration_runtime_status(runtime)
    except GatewayError:
        return None
    tp = (status.get("properties") or {}).get("typeProperties") or {}
    return str(tp["version"]) if isinstance(tp, dict) and tp.get("version") else None


async def _scan_finding(target: Target, scan: Json) -> Finding:
    name = str(scan.get("name", ""))
    title = f"Scan {name}: self-hosted integration runtime machine"
    runtime = scan_runtime_name(scan)
    kind = runtime_kind(scan)
    if runtime is None or kind in (AZURE_IR, MANAGED_VNET_IR):
        where = "the Azure integration runtime" if runtime is None else f"managed runtime {runtime}"
        return META.skipped(title, f"the scan runs on {where}: no machine of yours", scan=name)
    try:
        runs = await target.facts.runs(target.source_name, name)
    except GatewayError as error:
        return META.unknown(title, error, scan=name)
    last = scan_history.history(runs).last
    if last is None or not scan_history.is_failed(last):
        state = "has no finished run" if last is None else f"newest run {last.get('status')}"
        return META.finding(
            Status.PASS if last is not None else Status.SKIPPED,
            f"{title}: no host problem in the newest run",
            detail=f"Scan {name} {state}: no error names a problem of runtime {runtime}'s machine.",
            evidence={"integrationRuntime": runtime},
            scan=name,
        )
    text = error_text(last)
    version = await _version_of(target, runtime) if VERSION_NEEDED.search(text) else None
    found = judge_text(name, runtime, last, text, version)
    if found is not None:
        return found
    detail = (
        f"Scan {name}'s newest run failed with an error that names no problem of runtime {runtime}'s "
        "machine: see the scan-history finding for what it points to."
    )
    return META.skipped(f"{title}: the error points elsewhere", detail, scan=name)


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No runtime to check.")]
    return list(await asyncio.gather(*(_scan_finding(target, s) for s in target.scans)))


CHECK = Check(meta=META, run=run)

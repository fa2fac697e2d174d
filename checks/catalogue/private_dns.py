"""Private endpoints and DNS on a self-hosted runtime's path to the source (issue 12, beyond the guide).

A self-hosted integration runtime reaches a source through a private endpoint only when (1) the endpoint's
connection on the source is Approved, for the sub-resource the scan reads (`dfs` for ADLS Gen2, `blob`,
`sqlServer`…), and (2) the source's name resolves, on the runtime's machines, to the endpoint's private
address: usually through a private DNS zone (`privatelink.dfs.core.windows.net`…) that holds an A record for
the resource and is linked to the VNet the machines resolve names in. Azure writes that record when the
endpoint has a DNS zone group.
https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns

What the bot decides, and how sure it can be:
- approval is a fact on the source: a Pending / Rejected / Disconnected connection (or none Approved at all)
  stops the scan when the source denies public network access (`fail`), and is only a hazard otherwise;
- DNS is judged on Azure's side (zone group, zone, A record, VNet links) and can only ever be a `warn`:
  the runtime's VM may use its own DNS server, a forwarder or a hosts file the bot cannot see. Each finding
  says what to verify on the runtime's machines (`nslookup`, expecting the private address).
Only self-hosted runtimes are judged: the Azure IR uses no private endpoint, and a managed VNet IR goes
through Purview's managed private endpoints (private-network / integration-runtime judge those). Key Vaults
are not judged here: Purview reads them itself, through the trusted-services exception (key-vault-access).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from checks import fixes, sections
from checks.accounts import arm_name
from checks.catalogue.private_network import Runtime, network_resource_id, posture_of, runtime_of
from checks.catalogue.scan_history import history
from checks.check import Check, CheckMeta
from checks.classify import PRIVATE_DNS_RESOLUTION, classify_run
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status, worst
from checks.private_endpoints import Endpoint, Zone, read_endpoints, record_addresses, zone_for
from checks.runtimes import Need, source_needs
from checks.source_kinds import SQL_MI_TYPE, Family, SourceKind, id_part, source_kind
from checks.target import Target

META = CheckMeta(
    id="private-dns",
    title="Private endpoints and DNS on the self-hosted runtime's path",
    sections=(sections.PRIVATE_DNS, sections.PRIVATE_LINK),
    description=(
        "For scans on a self-hosted integration runtime: the source's private endpoint connections are "
        "Approved for the sub-resource the scan reads, and each endpoint has a private DNS zone group whose "
        "zone holds the A record and is linked to a VNet; what to verify from the runtime's machines "
        "(nslookup, expecting the private address)."
    ),
)
_FAMILIES = (Family.BLOB, Family.SQL, Family.SYNAPSE, Family.COSMOS)


@dataclass
class Verdict:
    """Sentences (with their status) and fix steps gathered while judging one source's endpoints."""

    items: list[tuple[Status, str]] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)  # what to check on the runtime's machines

    def add(
        self, status: Status, sentence: str, fix: list[str] | None = None, verify: list[str] | None = None
    ) -> None:
        self.items.append((status, sentence))
        self.fix.extend(s for s in fix or [] if s not in self.fix)
        self.verify.extend(s for s in verify or [] if s not in self.verify)

    @property
    def steps(self) -> list[str]:
        """The fix, then what to verify on the runtime's machines."""
        return self.fix + [s for s in self.verify if s not in self.fix]

    @property
    def status(self) -> Status:
        return worst([s for s, _ in self.items])

    @property
    def problems(self) -> list[str]:
        return [s for st, s in self.items if st is not Status.PASS]


def _rg(resource_id: str) -> str:
    return id_part(resource_id, "resourceGroups") or "<resource group>"


def _approve_fix(e: Endpoint) -> list[str]:
    return [
        "az network private-endpoint-connection approve \\\n"
        f"  --id {e.connection.id or '<connection id>'} \\\n"
        '  --description "Purview self-hosted runtime path"'
    ]


def _create_endpoint_fix(rid: str, group: str) -> list[str]:
    return [
        "az network private-endpoint create \\\n"
        f"  --resource-group <resource group of the runtime's VNet> \\\n"
        f"  --name {arm_name(rid)}-{group.lower()}-pe \\\n"
        "  --vnet-name <the runtime's VNet> \\\n"
        "  --subnet <a subnet in it> \\\n"
        f"  --private-connection-resource-id {rid} \\\n"
        f"  --group-id {group} \\\n"
        f"  --connection-name {arm_name(rid)}-{group.lower()}"
    ]


def _verify_steps(runtime: str, host: str, ips: list[str]) -> list[str]:
    where = f"the endpoint's private address {', '.join(ips)}" if ips else "the endpoint's private address"
    return [
        f"On each node of self-hosted integration runtime {runtime}, {host} must resolve to {where}, "
        "not a public one:",
        f"nslookup {host}",
    ]


def _host(e: Endpoint, rid: str, group: str) -> tuple[str, list[str]]:
    """The public name the scan connects to and the private addresses it should resolve to."""
    zone = zone_for(rid, group)
    suffix = zone.removeprefix("privatelink.") if zone else None
    for fqdn, ips in e.dns_configs():
        label, _, rest = fqdn.partition(".")
        rest = rest.removeprefix("privatelink.")
        if suffix is None or rest.lower() == suffix:
            return f"{label}.{rest}", ips
    name = arm_name(rid)
    return (f"{name}.{suffix}" if suffix else name), []


def _zone_of(e: Endpoint, expected: str | None) -> Zone | None:
    zones = list(e.zones.values())
    if expected is not None:
        return next((z for z in zones if z.name.lower() == expected.lower()), None)
    return zones[0] if len(zones) == 1 else None


def _judge_dns(v: Verdict, e: Endpoint, rid: str, group: str, runtime: str) -> None:
    """Azure's side of name resolution for one Approved endpoint: only ever `warn` (custom DNS may do it)."""
    pe = e.connection.endpoint_name
    host, ips = _host(e, rid, group)
    verify = _verify_steps(runtime, host, ips)
    expected = zone_for(rid, group)
    zone_label = expected or f"the privatelink zone of {group}"
    if isinstance(e.resource, GatewayError) or isinstance(e.zone_groups, GatewayError):
        error = e.resource if isinstance(e.resource, GatewayError) else e.zone_groups
        assert isinstance(error, GatewayError)
        v.add(
            Status.UNKNOWN,
            f"could not read private endpoint {pe} or its DNS zone groups ({error.reason})",
            verify=verify,
        )
        return
    vnet = e.vnet or "<runtime VNet id>"
    rg = _rg(e.connection.endpoint_id)
    if not e.zone_groups:
        steps = [
            f"Create the zone {zone_label} if it does not exist and link it to the VNet the runtime's "
            "machines resolve names in (the endpoint's VNet below):",
        ]
        if expected is not None:  # commands only with the zone's real name: a phrase is no zone name
            steps += [
                fixes.command(
                    "az network private-dns zone create", [("--resource-group", rg), ("--name", expected)]
                ),
                _link_vnet(rg, expected, vnet),
                fixes.command(
                    "az network private-endpoint dns-zone-group create",
                    [
                        ("--resource-group", rg),
                        ("--endpoint-name", pe),
                        ("--name", "default"),
                        ("--private-dns-zone", expected),
                        ("--zone-name", expected.replace(".", "-")),
                    ],
                ),
            ]
        v.add(
            Status.WARN,
            f"private endpoint {pe} ({group}) has no private DNS zone group: no Azure private DNS zone maps "
            f"{host} to its private address, so it resolves privately only if the runtime's own DNS does",
            steps,
            verify,
        )
        return
    zone = _zone_of(e, expected)
    if zone is None:
        names = ", ".join(z.name for z in e.zones.values()) or "none"
        v.add(
            Status.WARN,
            f"private endpoint {pe}'s DNS zone group writes to {names}, not {zone_label}",
            verify=verify,
        )
        return
    record_name = host.split(".", 1)[0]
    if isinstance(zone.records, GatewayError):
        v.add(
            Status.UNKNOWN,
            f"could not read the A records of zone {zone.name} ({zone.records.reason})",
            verify=verify,
        )
        return
    record = zone.a_record(record_name)
    zrg = _rg(zone.id)
    if record is None:
        v.add(
            Status.WARN,
            f"zone {zone.name} has no A record {record_name}, so {host} does not resolve to private "
            f"endpoint {pe} through it",
            [
                *(
                    f"az network private-dns record-set a add-record --resource-group {zrg} "
                    f"--zone-name {zone.name} --record-set-name {record_name} --ipv4-address {ip}"
                    for ip in ips
                ),
            ],
            verify,
        )
        return
    have = record_addresses(record)
    if ips and not set(ips) & set(have):
        v.add(
            Status.WARN,
            f"A record {record_name} in zone {zone.name} points at {', '.join(have) or 'nothing'}, "
            f"but private endpoint {pe} has {', '.join(ips)}",
            [
                f"az network private-dns record-set a add-record --resource-group {zrg} "
                f"--zone-name {zone.name} --record-set-name {record_name} --ipv4-address {ips[0]}",
                *(
                    f"az network private-dns record-set a remove-record --resource-group {zrg} "
                    f"--zone-name {zone.name} --record-set-name {record_name} --ipv4-address {old}"
                    for old in have
                ),
            ],
            verify,
        )
        return
    if isinstance(zone.links, GatewayError):
        v.add(
            Status.UNKNOWN,
            f"could not read the VNet links of zone {zone.name} ({zone.links.reason})",
            verify=verify,
        )
        return
    vnets = [x for x in zone.linked_vnets() if x]
    if not vnets:
        v.add(
            Status.WARN,
            f"zone {zone.name} is linked to no virtual network, so no VNet resolves {host} through it",
            [
                _link_vnet(zrg, zone.name, vnet),
            ],
            verify,
        )
        return
    beside = (
        ""
        if e.vnet is None or e.vnet.lower() in {x.lower() for x in vnets}
        else (f" (not to the endpoint's own VNet {arm_name(e.vnet)})")
    )
    v.add(
        Status.PASS,
        f"private endpoint {pe} ({group}) is Approved; zone {zone.name} maps {record_name} to "
        f"{', '.join(have)} and is linked to {', '.join(arm_name(x) for x in vnets)}{beside}: the runtime's "
        "machines must resolve names in one of those VNets (or through a DNS forwarder there)",
        verify=verify,
    )


def _judge_need(
    v: Verdict, need: Need, endpoints: list[Endpoint], rid: str, private: bool, runtime: str
) -> None:
    mine = [e for e in endpoints if not e.foreign]
    serving = [e for e in mine if any(e.serves(g) for g in need.groups)]
    approved = [e for e in serving if e.connection.approved]
    # an Approved endpoint whose sub-resource the bot cannot see (another subscription, or unreadable)
    # may be the one serving this need: never a failure then
    unseen = [e for e in endpoints if e.connection.approved and (e.foreign or not e.groups)]
    stops = private and need.required and not unseen
    if approved:
        _judge_dns(v, approved[0], rid, need.groups[0], runtime)
        return
    unreadable = [e for e in unseen if isinstance(e.resource, GatewayError)]
    if not serving and unreadable:
        e = unreadable[0]
        assert isinstance(e.resource, GatewayError)
        v.add(
            Status.UNKNOWN,
            f"could not read private endpoint {e.connection.endpoint_name} (Approved) to see whether it "
            f"serves sub-resource {need.label} ({e.resource.reason})",
        )
        return
    if serving:
        for e in serving:
            state = e.connection.status or "in no approval state"
            v.add(
                Status.FAIL if stops else Status.WARN,
                f"private endpoint {e.connection.endpoint_name} ({need.label}) is {state}: no traffic flows "
                "through it until the resource's owner approves it",
                _approve_fix(e),
            )
        return
    if not private:
        return  # the runtime uses the public endpoint for this sub-resource
    others = ", ".join(f"{e.connection.endpoint_name} ({', '.join(e.groups) or '?'})" for e in mine) or "none"
    if need.required:
        v.add(
            Status.FAIL if stops else Status.WARN,
            f"no private endpoint of {arm_name(rid)} serves sub-resource {need.label} (endpoints: {others})",
            _create_endpoint_fix(rid, need.groups[0]),
        )
    else:
        v.add(
            Status.WARN,
            f"no private endpoint of {arm_name(rid)} serves sub-resource {need.label}, which Microsoft "
            "recommends beside the one the scan reads",
            _create_endpoint_fix(rid, need.groups[0]),
        )


def judge(endpoints: list[Endpoint], rid: str, kind: SourceKind, private: bool, runtime: str) -> Verdict:
    v = Verdict()
    if not any(e.connection.approved for e in endpoints) and private:
        if endpoints:
            states = ", ".join(
                f"{e.connection.endpoint_name} {e.connection.status or '?'}" for e in endpoints
            )
            for e in endpoints:
                v.add(
                    Status.FAIL,
                    f"private endpoint {e.connection.endpoint_name} is "
                    f"{e.connection.status or 'not approved'} and {arm_name(rid)} denies public network "
                    f"access ({states})",
                    _approve_fix(e),
                )
            return v
        needs = source_needs(kind.kind)
        group = needs[0].groups[0] if needs else "<sub-resource>"
        v.add(
            Status.FAIL,
            f"{arm_name(rid)} denies public network access and has no private endpoint",
            _create_endpoint_fix(rid, group),
        )
        return v
    needs = source_needs(kind.kind) or (
        Need(tuple(sorted({g for e in endpoints for g in e.groups} or {"?"}))),
    )
    for need in needs:
        _judge_need(v, need, endpoints, rid, private, runtime)
    return v


async def _corroboration(target: Target, scan: str) -> str:
    try:
        runs = await target.facts.runs(target.source_name, scan)
    except GatewayError:
        return ""
    newest = history(runs).last
    found = classify_run(newest) if newest is not None else None
    if found is None or found.cause != PRIVATE_DNS_RESOLUTION:
        return ""
    return f" The newest run failed with '{found.matched}', a name that did not resolve."


async def _runtimes(target: Target) -> list[tuple[Json, Runtime | GatewayError]]:
    async def one(scan: Json) -> Runtime | GatewayError:
        try:
            return await runtime_of(target.facts, scan)
        except GatewayError as error:
            return error

    found = await asyncio.gather(*(one(s) for s in target.scans))
    return list(zip(target.scans, found, strict=True))


def _finding(
    v: Verdict, target: Target, scan: str, rt: Runtime, rid: str, evidence: dict[str, Any], extra: str
) -> Finding:
    res = arm_name(rid)
    status = v.status
    ev = {**evidence, "runtime": rt.evidence()}
    if status is Status.PASS:
        return META.finding(
            Status.PASS,
            f"Private endpoints of {res} are approved and in private DNS (scan {scan}, self-hosted IR "
            f"{rt.name})",
            detail=(
                "; ".join(s for _, s in v.items)
                + ". To confirm on the runtime's machines: "
                + "; ".join(x for x in v.verify if x.startswith("nslookup "))
                + "."
            ),
            evidence=ev,
            scan=scan,
        )
    problems = v.problems
    return META.finding(
        status,
        f"{res} through self-hosted IR {rt.name}: {problems[0].split(': ')[0].split(', so ')[0]}",
        detail=(
            f"Scan {scan} runs on self-hosted integration runtime {rt.name}, which reaches {rid} through a "
            f"private endpoint only when its connection is Approved and the name resolves to it: "
            f"{'; '.join(problems)}.{extra}"
        ),
        fix=v.steps,
        evidence=ev,
        scan=scan,
    )


async def _resource(target: Target, resource_id: str) -> Json | GatewayError:
    try:
        return await target.facts.resource(resource_id)
    except GatewayError as error:
        return error


async def run(target: Target) -> list[Finding]:
    kind = source_kind(target.source_kind)
    if kind is None or kind.family not in _FAMILIES:
        return [
            META.skipped(
                f"Private endpoints not checked for source kind {target.source_kind}",
                "The bot has no private endpoint rule for this kind.",
            )
        ]
    rid = target.resource_id
    if not rid or not target.scans:
        return META.nothing_to_check(target, "runtime")
    net_id = network_resource_id(kind, rid)
    # the resource (read by private-network too) beside the runtimes: its endpoints wait for neither
    runtimes, read = await asyncio.gather(_runtimes(target), _resource(target, net_id))
    findings: list[Finding] = []
    shir = []
    for scan, rt in runtimes:
        name = str(scan.get("name", ""))
        if isinstance(rt, GatewayError):
            findings.append(
                META.unknown(f"Could not read the integration runtime of scan {name}", rt, scan=name)
            )
        elif rt.kind == "selfhosted":
            shir.append((name, rt))
    if not shir:
        return findings or [
            META.skipped(
                f"No scan of {target.source_name} runs on a self-hosted integration runtime",
                "The Azure IR uses no private endpoint, and a managed VNet IR reaches sources through "
                "Purview's managed private endpoints, which the private-network check judges.",
            )
        ]
    try:
        if isinstance(read, GatewayError):
            raise read
        resource = read
        posture = await posture_of(target.facts, kind, resource)
    except GatewayError as error:
        return findings + [
            META.unknown(f"Could not read {arm_name(net_id)} for its private endpoints", error, scan=n)
            for n, _ in shir
        ]
    endpoints = await read_endpoints(target.facts, resource)
    # a managed instance lives in a VNet: a self-hosted runtime in that VNet (or a peered one) reaches its
    # VNet-local endpoint with no private endpoint at all, so closed public access proves nothing here
    # https://learn.microsoft.com/en-us/azure/azure-sql/managed-instance/connectivity-architecture-overview
    in_vnet = kind.resource_type.lower() == SQL_MI_TYPE.lower()
    private = posture.state == "private" and not in_vnet
    evidence: dict[str, Any] = {
        "resourceId": net_id,
        "publicNetworkAccessDisabled": private,
        "endpoints": [e.evidence() for e in endpoints],
    }
    if not endpoints and in_vnet:
        return findings + [
            META.skipped(
                f"{arm_name(net_id)} has no private endpoint (scan {n})",
                f"Self-hosted IR {rt.name} reaches the managed instance through its VNet-local endpoint: its "
                "machines must be in the instance's VNet or a peered one, which the bot cannot see.",
                scan=n,
            )
            for n, rt in shir
        ]
    if not endpoints and not private:
        return findings + [
            META.skipped(
                f"{arm_name(net_id)} has no private endpoint (scan {n})",
                f"Self-hosted IR {rt.name} reaches it on its public endpoint; the private-network check "
                "covers that path.",
                scan=n,
            )
            for n, rt in shir
        ]
    for name, rt in shir:
        v = judge(endpoints, net_id, kind, private, rt.name or "?")
        extra = await _corroboration(target, name) if v.status is not Status.PASS else ""
        findings.append(_finding(v, target, name, rt, net_id, evidence, extra))
    return findings


CHECK = Check(meta=META, run=run)


def _link_vnet(group: str, zone: str, vnet: str) -> str:
    """Link `zone` to `vnet`, the VNet's id in a variable (it is long, and people edit it)."""
    return fixes.command(
        "az network private-dns link vnet create",
        [
            ("--resource-group", group),
            ("--zone-name", zone),
            ("--name", f"{arm_name(vnet)}-link"),
            ("--virtual-network", "$VNET_ID"),
            ("--registration-enabled", "false"),
        ],
        variables={"VNET_ID": vnet},
    )

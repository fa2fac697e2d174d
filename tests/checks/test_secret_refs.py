"""secret_refs: finding every Key Vault reference in a credential and following it to the vault."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from checks.catalogue import credential_rotation, key_vault_access, key_vault_secret
from checks.errors import GatewayError
from checks.secret_refs import (
    MSI_SKIP,
    MissingLinkError,
    SecretRef,
    collect,
    credential_names,
    newest_refusal,
    refusal_in,
    scan_secrets,
    secret_refs,
)
from checks.times import parse_time
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld


def test_refs_in_every_credential_type() -> None:
    sp = {
        "servicePrincipalId": "app",
        "tenant": "t",
        "servicePrincipalKey": w.kv_secret_ref("sp-key", "kv2", "V9"),
    }
    assert secret_refs(sp) == [SecretRef("servicePrincipalKey", "sp-key", "V9", "kv2")]
    consumer = {
        "user": "u",
        "password": w.kv_secret_ref("pw"),
        "consumerKey": "ck",
        "consumerSecret": w.kv_secret_ref("cs"),
    }
    assert [(r.field, r.secret_name) for r in secret_refs(consumer)] == [
        ("password", "pw"),
        ("consumerSecret", "cs"),
    ]
    assert secret_refs({"principalId": w.UAMI_OID, "tenantId": w.TENANT}) == []


def test_untyped_reference_and_nested_fields_are_found() -> None:
    untyped = {"secretName": "k", "store": {"referenceName": "main-kv"}}
    refs = secret_refs(
        {"outer": {"inner": [untyped]}, "accountKey": {"type": "azureKeyVaultSecret", "secretName": "a"}}
    )
    assert refs == [SecretRef("outer.inner[0]", "k", "", "main-kv"), SecretRef("accountKey", "a", "", "")]


def test_credential_names_include_resource_types_once() -> None:
    scan = w.scan("multi", "AzureSubscriptionCredential", credential="c1")
    scan["properties"]["resourceTypes"] = {
        "azureStorage": {"credential": {"referenceName": "c2"}},
        "adlsGen2": {"credential": {"referenceName": "c1"}},
        "azureSqlDatabase": {"scanRulesetName": "x"},
    }
    assert credential_names(scan) == ["c1", "c2"]


@pytest.mark.parametrize("shape", ["kind", "properties"])
async def test_scan_secrets_follow_the_chain_in_both_shapes(shape: str) -> None:
    world = kv.kv_world(shape=shape)
    facts = FakeWorld(world).facts()
    [secret] = await scan_secrets(facts, kv.secret_scan())
    assert secret.credential_type == "SqlAuth" and secret.vault_id == kv.VAULT_ID
    assert secret.base_url == kv.VAULT_URI and secret.ref.connection == kv.CONNECTION


async def test_vault_uri_is_compared_without_case_or_trailing_slash() -> None:
    world = kv.kv_world()
    w.pv(world)["azureKeyVaults"][0]["properties"]["baseUrl"] = kv.VAULT_URI.upper().rstrip("/")
    [secret] = await scan_secrets(FakeWorld(world).facts(), kv.secret_scan())
    assert secret.vault_name == kv.VAULT


@pytest.mark.parametrize(
    ("break_it", "link"),
    [
        (lambda world: w.pv(world).update(credentials=[]), "credential"),
        (lambda world: w.pv(world).update(azureKeyVaults=[]), "key-vault-connection"),
        (lambda world: world.update(resources=world["resources"][:-1]), "vault"),
    ],
)
async def test_each_missing_link_is_named(break_it: Callable[[dict[str, Any]], object], link: str) -> None:
    world = kv.kv_world()
    break_it(world)
    with pytest.raises(MissingLinkError) as caught:
        await scan_secrets(FakeWorld(world).facts(), kv.secret_scan())
    assert caught.value.link == link


async def test_gateway_errors_pass_through() -> None:
    fake = FakeWorld(kv.kv_world())
    fake.fail["purview.credential"] = GatewayError("GET credential", status=500)
    [outcome] = await collect(fake.facts(), [kv.secret_scan()])
    assert outcome.error is not None and outcome.error.status == 500 and not outcome.secrets


async def test_msi_scans_need_no_vault_listing() -> None:
    fake = FakeWorld(kv.kv_world())
    [outcome] = await collect(fake.facts(), [w.scan("weekly", "AdlsGen2Msi")])
    assert outcome.skip_reason == MSI_SKIP
    assert fake.calls == {}


async def test_three_checks_read_each_link_once() -> None:
    fake = FakeWorld(kv.kv_world(runs={kv.SCAN: [w.scan_run("Succeeded", "2026-11-10T00:00:00Z")]}))
    target = await fake.target(kv.SOURCE)
    await asyncio.gather(
        key_vault_secret.run(target), key_vault_access.run(target), credential_rotation.run(target)
    )
    once = [
        f"purview.credential:{kv.CREDENTIAL}",
        f"purview.kv_connection:{kv.CONNECTION}",
        f"kv.versions:{kv.VAULT_URI.rstrip('/')}:{kv.SECRET}",
        "arm.subscriptions",
    ]
    assert {c: fake.calls[c] for c in once} == dict.fromkeys(once, 1)


def test_parse_time_handles_wire_forms() -> None:
    assert parse_time("2022-02-23T15:52:25.4059244Z") == datetime(2022, 2, 23, 15, 52, 25, 405924, tzinfo=UTC)
    assert parse_time("2026-11-28T08:00:00") == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("yesterday") is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Login failed for user 'scanner'. (Microsoft SQL Server, Error: 18456)", "SQL login refused"),
        (
            "AADSTS7000222: The provided client secret keys for app 'x' are expired.",
            "service principal secret refused",
        ),
        (
            "Server failed to authenticate the request. Make sure the value of Authorization header "
            "is formed correctly including the signature.",
            "storage account key refused",
        ),
        ('FATAL: password authentication failed for user "scanner"', "password refused"),
        ("Login failed for user '<token-identified principal>'. 18456", None),
        ("Login failed for user 'x'. Reason: Microsoft Entra-only authentication is enabled.", None),
        ("KeyBasedAuthenticationNotPermitted: Key based authentication is not permitted", None),
        ("The self-hosted integration runtime is offline", None),
    ],
)
def test_refusal_in_recognises_a_source_refusing_the_secret(text: str, reason: str | None) -> None:
    found = refusal_in(text)
    assert (found[0] if found else None) == reason


def test_newest_refusal_reads_only_the_newest_finished_run() -> None:
    refused = w.scan_run("Failed", "2026-11-26T00:00:00Z", error_message="Login failed for user 'x'")
    succeeded = w.scan_run("Succeeded", "2026-11-27T00:00:00Z")
    queued = {"id": "q", "status": "Queued", "startTime": "2026-11-28T00:00:00Z"}
    assert newest_refusal([succeeded, refused]) is None
    found = newest_refusal([queued, refused])
    assert found is not None and found.run_id == refused["id"] and found.reason == "SQL login refused"

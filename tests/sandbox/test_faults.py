"""Fault and latency injection: times, Retry-After, delays, method filters, per-plane error bodies."""

from __future__ import annotations

import time

from azure.identity.aio import EnvironmentCredential
from azure.mgmt.authorization.aio import AuthorizationManagementClient

from sandbox import Sandbox, load_world
from tests.sandbox.conftest import ARM, GRAPH, KEYVAULT, STORAGE, SUB, TENANT, Caller, Json, client_session

V = {"api-version": "2023-05-01"}


async def test_times_and_retry_after(sb: Sandbox, call: Caller) -> None:
    sb.add_fault({"path": r"storageAccounts/salesadls$", "status": 429, "retryAfter": 7, "times": 2})
    results = [await call("GET", STORAGE, scope=ARM, params=V) for _ in range(3)]
    assert [status for status, _, _ in results] == [429, 429, 200]
    assert results[0][1]["error"]["code"] == "TooManyRequests"
    assert results[0][2]["Retry-After"] == "7"
    recorded = [r for r in sb.requests if r.host_area == "arm"]
    assert [(r.status, r.faulted, r.authorized) for r in recorded] == [
        (429, True, True), (429, True, True), (200, False, True)
    ]  # fmt: skip


async def test_regex_sees_the_query_and_method(sb: Sandbox, call: Caller) -> None:
    sb.add_fault({"path": r"\$filter=atScope\(\)", "status": 500, "method": "GET"})
    path = f"{STORAGE}/providers/Microsoft.Authorization/roleAssignments"
    status, body, _ = await call("GET", path, scope=ARM, params={**V, "$filter": "atScope()"})
    assert (status, body["error"]["code"]) == (500, "InternalServerError")
    status, _, _ = await call("GET", path, scope=ARM, params=V)
    assert status == 200
    sb.clear_faults()
    status, _, _ = await call("GET", path, scope=ARM, params={**V, "$filter": "atScope()"})
    assert status == 200


async def test_error_bodies_follow_the_plane(sb: Sandbox, call: Caller) -> None:
    sb.add_fault({"path": "^/kv/", "status": 403, "code": "Forbidden", "innerCode": "ForbiddenByRbac"})
    sb.add_fault({"path": "^/graph/", "status": 503})
    sb.add_fault({"path": "oauth2/v2.0/token", "status": 503, "times": 1})
    status, body, _ = await call("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    status, body, _ = await call(
        "GET", "/kv/kv-sales/secrets/sql-password/versions", scope=KEYVAULT, params=V
    )
    assert status == 403 and body["error"]["innererror"] == {"code": "ForbiddenByRbac"}
    status, body, _ = await call("GET", "/graph/v1.0/users/x", scope=GRAPH)
    assert status == 503 and body["error"]["code"] == "ServiceUnavailable" and "innerError" in body["error"]


async def test_unauthenticated_requests_do_not_consume_faults(sb: Sandbox, call: Caller) -> None:
    sb.add_fault({"path": "/versions$", "status": 429, "times": 1})
    status, _, _ = await call("GET", "/kv/kv-sales/secrets/sql-password/versions", params=V)
    assert status == 401  # the challenge is answered first
    status, _, _ = await call("GET", "/kv/kv-sales/secrets/sql-password/versions", scope=KEYVAULT, params=V)
    assert status == 429


async def test_delay_without_status_answers_normally(sb: Sandbox, call: Caller) -> None:
    sb.add_fault({"path": "salesadls$", "delayMs": 150, "times": 1})
    started = time.monotonic()
    status, _, _ = await call("GET", STORAGE, scope=ARM, params=V)
    assert status == 200 and time.monotonic() - started >= 0.15
    assert not sb.requests[-1].faulted and sb.requests[-1].duration >= 0.15


async def test_world_faults_and_sdk_retry(world_data: Json, monkeypatch: object) -> None:
    fault = {"path": "roleAssignments", "status": 503, "retryAfter": 0.01, "times": 1}
    world = load_world({**world_data, "faults": [fault]})
    async with Sandbox(world) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
        async with (
            EnvironmentCredential(connection_verify=sb.ca_file) as cred,
            AuthorizationManagementClient(cred, SUB, base_url=sb.url, connection_verify=sb.ca_file) as client,
        ):
            found = [ra async for ra in client.role_assignments.list_for_scope(STORAGE, filter="atScope()")]
        assert len(found) == 4
        attempts = [r for r in sb.requests if r.path.endswith("/roleAssignments")]
        assert [(r.status, r.faulted) for r in attempts] == [(503, True), (200, False)]


async def test_constructor_latency_applies_to_every_request(world_data: Json) -> None:
    async with Sandbox(load_world(world_data), latency_ms=60) as sb, client_session(sb) as http:
        async with http.get(f"{sb.url}/subscriptions", params=V) as resp:
            assert resp.status == 401
        async with http.get(f"{sb.url}/common/discovery/instance") as resp:
            assert resp.status == 200
    assert all(r.duration >= 0.06 for r in sb.requests) and len(sb.requests) == 2

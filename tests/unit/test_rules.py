"""The pure rules of the docs page: default start_permission, who may start, the flow set."""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy.auth import Caller
from flowdeploy.deployments import (
    DeploymentRef,
    admits,
    collect_flow_set,
    infer_start_permission,
    parse_flow_id,
)
from flowdeploy.errors import BadRequest
from flowdeploy.flows import interflow_targets, wallet_ids
from flowdeploy.ids import timestamp

OWNER = "885623c5-d001-41da-9d34-5577e49df350"
OTHER = "00000000-0000-4000-8000-000000000001"
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"

owner = Caller(kind="user", user_id=OWNER)
other_user = Caller(kind="user", user_id=OTHER)
anonymous = Caller(kind="anonymous", pubkey=WALLET, via="pubkey")


@pytest.mark.parametrize(
    ("is_public", "start_shared", "start_unverified", "expected"),
    [
        (False, False, False, "Owner"),
        (False, True, False, "Owner"),
        (False, True, True, "Owner"),
        (False, False, True, "Owner"),
        (True, False, False, "Owner"),
        (True, False, True, "Owner"),
        (True, True, False, "Authenticated"),
        (True, True, True, "Anonymous"),
    ],
)
def test_default_start_permission_is_inferred_from_the_flow_flags(
    is_public: bool, start_shared: bool, start_unverified: bool, expected: str
) -> None:
    assert (
        infer_start_permission(
            is_public=is_public, start_shared=start_shared, start_unverified=start_unverified
        )
        == expected
    )


@pytest.mark.parametrize(
    ("permission", "caller", "allowed"),
    [
        ("Owner", owner, True),
        ("Owner", other_user, False),
        ("Owner", anonymous, False),
        ("Authenticated", owner, True),
        ("Authenticated", other_user, True),
        ("Authenticated", anonymous, False),
        ("Anonymous", owner, True),
        ("Anonymous", other_user, True),
        ("Anonymous", anonymous, True),
    ],
)
def test_start_permission_admits_exactly_the_documented_callers(
    permission: str, caller: Caller, allowed: bool
) -> None:
    assert admits(permission, OWNER, caller) is allowed


def flow(flow_id: int, *calls: Any, user: str = OWNER) -> dict[str, Any]:
    nodes = [
        {"id": f"call-{i}", "data": {"node_id": "interflow", "config": {"flow_id": target}}}
        for i, target in enumerate(calls)
    ]
    return {"id": flow_id, "user_id": user, "nodes": nodes, "edges": []}


class Loader:
    def __init__(self, *flows: dict[str, Any]) -> None:
        self.flows = {f["id"]: f for f in flows}
        self.calls: list[list[int]] = []

    def __call__(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        self.calls.append(sorted(ids))
        return {i: self.flows[i] for i in ids if i in self.flows}


def test_flow_set_holds_every_flow_reachable_through_interflow_once() -> None:
    load = Loader(flow(2, 3), flow(3, 1), flow(4))
    found = collect_flow_set(flow(1, 2, {"U": "4"}, 2), OWNER, load)
    assert [f["id"] for f in found] == [1, 2, 4, 3]
    assert load.calls == [[2, 4], [3]], "one load per nesting level"


def test_flow_set_of_a_flow_without_interflow_is_just_the_flow_and_loads_nothing() -> None:
    load = Loader()
    assert [f["id"] for f in collect_flow_set(flow(1), OWNER, load)] == [1]
    assert load.calls == []


def test_flow_set_refuses_a_nested_flow_of_another_user() -> None:
    with pytest.raises(BadRequest, match="calls flow 2, which does not exist or is not yours"):
        collect_flow_set(flow(1, 2), OWNER, Loader(flow(2, user=OTHER)))


def test_flow_set_refuses_a_missing_nested_flow_naming_the_node() -> None:
    with pytest.raises(BadRequest, match="interflow node 'call-0' calls flow 9"):
        collect_flow_set(flow(1, 9), OWNER, Loader())


def test_flow_set_refuses_an_interflow_node_without_a_flow_id() -> None:
    with pytest.raises(BadRequest, match="needs config flow_id"):
        collect_flow_set(flow(1, "not a number"), OWNER, Loader())


@pytest.mark.parametrize(
    ("config", "expected"),
    [(7, 7), ("7", 7), ({"U": "7"}, 7), ({"S": "7"}, 7), ({"I": "7"}, 7), (-1, None), (True, None)],
)
def test_interflow_flow_id_accepts_plain_and_ivalue_integers(config: Any, expected: Any) -> None:
    node = {"id": "n", "data": {"node_id": "interflow", "config": {"flow_id": config}}}
    assert interflow_targets([node]) == [("n", expected)]


def test_wallet_ids_are_collected_from_wallet_nodes() -> None:
    nodes = [
        {"id": "a", "data": {"node_id": "wallet", "config": {"wallet_id": {"S": "w-5"}}}},
        {"id": "b", "data": {"node_id": "wallet", "config": {"wallet_id": " w-6 "}}},
        {"id": "c", "data": {"node_id": "const", "config": {"wallet_id": "w-7"}}},
    ]
    assert wallet_ids(nodes) == {"w-5", "w-6"}


def test_start_query_by_id() -> None:
    ref = DeploymentRef.from_query({"id": "0194E5AC-9103-7C52-971E-F71F83C5DE2E"})
    assert ref == DeploymentRef(id="0194e5ac-9103-7c52-971e-f71f83c5de2e")


def test_start_query_by_flow_defaults_to_the_latest_tag() -> None:
    assert DeploymentRef.from_query({"flow": "3675"}) == DeploymentRef(flow=3675, tag="latest")


def test_start_query_by_flow_and_tag() -> None:
    ref = DeploymentRef.from_query({"flow": "3675", "tag": "v1"})
    assert ref == DeploymentRef(flow=3675, tag="v1")


@pytest.mark.parametrize(
    "query", [{"flow": "3675", "id": "0194e5ac-9103-7c52-971e-f71f83c5de2e"}, {"tag": "v1"}]
)
def test_start_query_naming_a_deployment_two_ways_is_a_bad_request(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        DeploymentRef.from_query(query)


@pytest.mark.parametrize(
    "query", [{}, {"id": "not-a-uuid"}, {"flow": "abc"}, {"flow": "0"}, {"flow": "-3"}]
)
def test_start_query_without_a_valid_target_is_a_bad_request(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        DeploymentRef.from_query(query)


def test_flow_ids_are_positive_integers() -> None:
    assert parse_flow_id("3675") == 3675
    with pytest.raises(BadRequest, match="flow_id must be a flow id"):
        parse_flow_id("3675.0")


def test_timestamps_look_like_the_docs_rows() -> None:
    from datetime import UTC, datetime

    assert timestamp(datetime(2025, 2, 8, 13, 7, 59, 355280, tzinfo=UTC)) == (
        "2025-02-08 13:07:59.35528"
    )
    assert timestamp(datetime(2025, 2, 8, 13, 7, 59, tzinfo=UTC)) == "2025-02-08 13:07:59"

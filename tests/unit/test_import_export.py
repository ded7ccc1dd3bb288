"""POST /data/import of upstream's docker/export.json and POST /data/export: what is imported
and why the rest is not, rewritten ids, idempotence, secrets, and flows that run the same
after an export and an import into another account."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import boto3
import pytest
from solders.keypair import Keypair

from flowdeploy import base58, frames
from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.engine.upstream import crate_flow, export, flow_row
from tests.unit.test_run_execution import execute, read, start

FLOWS = {
    "Interflow Instructions",
    "API Input",
    "Consts",
    "Simple Transfer",
    "Loop",
    "Add",
    "Collatz",
    "Collatz-Core",
    "Transfer SOL",
    "Deno Add",
}
WALLET = "GzPH2zu1BzcoWgZ4Qo8qZ8VyekGED8Hax4dYJcFauPgV"


def import_data(api: Api, user: str, body: dict[str, Any] | None = None) -> Reply:
    return api.call("POST", "/data/import", user=user, json_body=body or export())


def imported(api: Api, user: str) -> dict[str, Any]:
    reply = import_data(api, user)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def flow_ids(report: dict[str, Any]) -> dict[str, int]:
    return {flow["name"]: flow["flow_id"] for flow in report["flows"] if "flow_id" in flow}


def run_flow(api: Api, user: str, flow_id: int, inputs: dict[str, Any] | None = None) -> Any:
    started = start(api, user, api.deploy(user, flow_id), {"inputs": inputs or {}})
    execute(api, started["flow_run_id"])
    return read(api, started).body, read(api, started, "/nodes").body["nodes"]


def test_the_ten_flows_import_in_one_call(api: Api) -> None:
    report = imported(api, new_user())
    statuses = {flow["name"]: flow["status"] for flow in report["flows"]}
    assert statuses == dict.fromkeys(FLOWS, "imported")
    assert report["missing_commands"] == {}
    [wallet] = report["wallets"]
    assert (wallet["public_key"], wallet["status"], wallet["type"]) == (
        WALLET,
        "imported",
        "ADAPTER",
    )
    assert set(report["not_imported"]) == {
        "users",
        "identities",
        "pubkey_whitelists",
        "users_public",
        "apikeys",
        "user_quotas",
        "node_definitions",
    }


def test_importing_the_same_export_again_adds_nothing(api: Api) -> None:
    user = new_user()
    first = imported(api, user)
    second = imported(api, user)
    assert flow_ids(second) == flow_ids(first)
    assert {f["status"] for f in second["flows"] if "flow_id" in f} == {"unchanged"}
    assert second["wallets"][0]["status"] == "unchanged"
    assert len(api.call("GET", "/wallet", user=user).body["wallets"]) == 1
    exported = api.call("POST", "/data/export", user=user).body
    assert len(frames.read(exported["flows"], "flows")) == len(FLOWS)


def test_imported_flows_call_each_other_and_the_wallet_by_their_new_ids(api: Api) -> None:
    user = new_user()
    report = imported(api, user)
    ids = flow_ids(report)
    wallet_id = report["wallets"][0]["id"]
    caller = api.call("GET", f"/flow/{ids['Interflow Instructions']}", user=user).body
    [call] = [n for n in caller["nodes"] if n["data"]["node_id"] == "interflow_instructions"]
    assert call["data"]["config"]["flow_id"] == {"S": str(ids["Simple Transfer"])}
    transfer = api.call("GET", f"/flow/{ids['Simple Transfer']}", user=user).body
    [wallet] = [n for n in transfer["nodes"] if n["data"]["node_id"] == "wallet"]
    assert wallet["data"]["config"] == {"wallet_id": {"S": wallet_id}, "public_key": {"B3": WALLET}}


def test_an_imported_flow_reads_back_as_exported_but_for_the_ids_it_got(api: Api) -> None:
    user = new_user()
    ids = flow_ids(imported(api, user))
    for name in ("Loop", "Consts", "API Input"):
        row = flow_row(name)
        stored = api.call("GET", f"/flow/{ids[name]}", user=user).body
        for column in ("nodes", "edges", "environment", "viewport", "current_network", "uuid"):
            assert stored[column] == row[column], (name, column)
        for column in ("description", "is_public", "start_shared", "default_viewport"):
            expected = json.loads(row[column]) if column == "default_viewport" else row[column]
            assert stored[column] == expected, (name, column)


@pytest.mark.parametrize("name", ["2_foreach", "uneven_loop", "branch"])
def test_a_space_operator_flow_posted_as_it_is_reads_back_unchanged(api: Api, name: str) -> None:
    user = new_user()
    sent = json.loads((crate_flow.__globals__["FIXTURES"] / f"{name}.json").read_text())["flow"]
    body = {"name": name, **copy.deepcopy(sent)}
    created = api.call("POST", "/flow", user=user, json_body=body)
    assert created.status == 201, created.body
    back = api.call("GET", f"/flow/{created.body['flow_id']}", user=user).body
    owned = {"id", "user_id", "created_at", "updated_at"}
    for key, value in body.items():
        if key in owned:
            continue
        if key == "environment" and value is None:
            assert back[key] == {}, "upstream reads a null environment as empty"
            continue
        assert back[key] == value, key
    for key in ("nodes", "edges"):
        assert back[key] == sent[key], "every field of every node and edge kept"


def test_consts_and_loop_run_as_upstream_runs_them(api: Api) -> None:
    user = new_user()
    ids = flow_ids(imported(api, user))
    run, nodes = run_flow(api, user, ids["Consts"])
    assert (run["status"], run["outputs"], run["error"]) == ("succeeded", {}, None)
    assert len(nodes) == 12 and {n["status"] for n in nodes} == {"succeeded"}
    run, nodes = run_flow(api, user, ids["Loop"])
    assert run["status"] == "succeeded", run
    [collected] = [n for n in nodes if n["command"] == "collect"]
    assert collected["outputs"] == {
        "array": {"A": [{"S": "1"}, {"S": "2"}, {"S": "3"}, {"S": "4"}]}
    }
    assert sorted(n["times"] for n in nodes if n["command"] == "to_string") == [0, 1, 2, 3]


def test_interflow_instructions_outputs_the_called_flows_instructions(api: Api) -> None:
    user = new_user()
    ids = flow_ids(imported(api, user))
    run, nodes = run_flow(api, user, ids["Interflow Instructions"])
    assert run["status"] == "succeeded", run
    [instruction] = run["outputs"]["ins"]["A"]
    fields = instruction["M"]
    assert fields["program_id"] == {"B3": "11111111111111111111111111111111"}
    sender, recipient = (account["M"] for account in fields["accounts"]["A"])
    assert (sender["is_signer"], recipient["pubkey"]) == ({"B": True}, {"B3": WALLET})
    data = base64.b64decode(fields["data"]["BY"])
    assert int.from_bytes(data[4:12], "little") == 10_000_000, "0.01 SOL, Simple Transfer's const"
    [transfer] = [n for n in nodes if n["command"] == "transfer_sol"]
    assert transfer["status"] == "collected", "the called flow's transfer went to its caller"


def test_export_then_import_into_another_account_runs_the_same(api: Api) -> None:
    first = new_user()
    imported(api, first)
    exported = api.call("POST", "/data/export", user=first)
    assert exported.status == 200, exported.body
    assert exported.body["user_id"] == first
    second = new_user()
    report = import_data(api, second, exported.body).body
    ids = flow_ids(report)
    assert set(ids) == FLOWS
    assert report["wallets"][0]["status"] == "imported"
    run, _ = run_flow(api, second, ids["Loop"])
    assert run["status"] == "succeeded"
    run, _ = run_flow(api, second, ids["Interflow Instructions"])
    assert run["status"] == "succeeded" and len(run["outputs"]["ins"]["A"]) == 1
    mine = flow_ids(imported(api, first))
    assert not set(mine.values()) & set(ids.values()), "each account has its own flows"


def test_a_key_value_store_in_an_export_is_imported_with_its_items_and_exported_back(
    api: Api,
) -> None:
    user = new_user()
    body = dict(export())
    body["kvstore_metadata"] = frames.write(
        ["user_id", "store_name", "stats_size"], [[body["user_id"], "scores", "9"]]
    )
    body["kvstore"] = frames.write(
        ["user_id", "store_name", "key", "value", "last_updated"],
        [[body["user_id"], "scores", "alice", '{"U":"3"}', "2025-01-01 00:00:00"]],
    )
    report = import_data(api, user, body).body
    assert {"store": "scores", "status": "imported", "items": 1} in report["kvstore"], report
    exported = api.call("POST", "/data/export", user=user).body
    [item] = frames.read(exported["kvstore"], "kvstore")
    assert (item["store_name"], item["key"], item["value"]) == ("scores", "alice", '{"U":"3"}')


def with_wallets(*rows: list[str | None]) -> dict[str, Any]:
    body = dict(export())
    columns = frames.read(body["wallets"], "wallets")[0].keys()
    body["wallets"] = frames.write(list(columns), [list(row) for row in rows])
    return body


def wallet_row(pubkey: str, keypair: str | None) -> list[str | None]:
    return ["9", "2025-01-01", "HARDCODED", None, pubkey, "x", None, "hot", None, None, keypair]


def test_a_keypair_in_an_export_becomes_an_encrypted_wallet_never_stored_in_clear(
    api: Api,
) -> None:
    user = new_user()
    keypair = Keypair()
    secret = base58.encode(bytes(keypair))
    reply = import_data(api, user, with_wallets(wallet_row(str(keypair.pubkey()), secret)))
    [wallet] = reply.body["wallets"]
    assert (wallet["status"], wallet["type"]) == ("imported", "HARDCODED")
    assert wallet["keypair"] == "encrypted with the wallet key (KMS)"
    assert secret not in json.dumps(reply.body)
    items = boto3.client("dynamodb").scan(TableName="WalletsTable")["Items"]
    stored = json.dumps(items, default=str)
    assert secret not in stored and bytes(keypair)[:32].hex() not in stored
    assert [item["encrypted_secret"] for item in items if "encrypted_secret" in item]


def test_a_keypair_that_is_not_the_wallets_key_is_refused(api: Api) -> None:
    user = new_user()
    other = base58.encode(bytes(Keypair()))
    reply = import_data(api, user, with_wallets(wallet_row(WALLET, other)))
    [wallet] = reply.body["wallets"]
    assert wallet["status"] == "skipped"
    assert wallet["reason"] == "public_key is not the public key of keypair"
    assert api.call("GET", "/wallet", user=user).body["wallets"] == []
    skipped = {f["name"]: f.get("reason", "") for f in reply.body["flows"]}
    assert "which was not imported" in skipped["Simple Transfer"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("user_id"), "user_id: Field required"),
        (lambda b: b.update(flows="id;name\n'open"), "flows: flows: line 2"),
        (lambda b: b.update(colour="red"), "unknown field: colour"),
    ],
)
def test_an_import_that_is_not_an_export_is_a_400(api: Api, change: Any, message: str) -> None:
    body = dict(export())
    change(body)
    reply = import_data(api, new_user(), body)
    assert reply.status == 400
    assert message in reply.body["error"]


def test_import_and_export_need_an_account(api: Api) -> None:
    assert api.call("POST", "/data/import", json_body=export()).status == 401
    assert api.call("POST", "/data/export").status == 401

"""GET /nodes is the command registry the validator and the engine use, and the commands
table of docs/flows.md is generated from it."""

from __future__ import annotations

from flowdeploy.engine.command import FORMATS, REGISTRIES
from flowdeploy.local.command_table import current, table
from tests.conftest import ROOT
from tests.unit.api import Api


def test_get_nodes_lists_every_command_of_every_format_without_credentials(api: Api) -> None:
    reply = api.call("GET", "/nodes")
    assert reply.status == 200
    listed = {(entry["format"], entry["name"]): entry for entry in reply.body}
    expected = {(f, name) for f in FORMATS for name in REGISTRIES[f]}
    assert set(listed) == expected
    for (document_format, name), entry in listed.items():
        assert entry == REGISTRIES[document_format][name].catalogue_entry(document_format)


def test_an_entry_has_upstreams_node_definition_shape(api: Api) -> None:
    entries = {e["name"]: e for e in api.call("GET", "/nodes?format=spaceoperator").body}
    wait = entries["wait"]
    assert wait["ports"]["inputs"][0] == {
        "name": "value",
        "type_bounds": ["free"],
        "required": True,
        "passthrough": True,
        "tooltip": "passed through",
    }
    assert entries["api_input"]["ports"]["outputs"] == [
        {"name": "value", "type": "free", "optional": False, "tooltip": "the value POSTed"}
    ]
    assert entries["wallet"]["config_schema"]["required"] == ["wallet_id"]


def test_a_format_filter_and_a_bad_one(api: Api) -> None:
    ours = api.call("GET", "/nodes?format=flowdeploy").body
    assert {entry["format"] for entry in ours} == {"flowdeploy"}
    assert "add" in {entry["name"] for entry in ours}
    bad = api.call("GET", "/nodes?format=rust")
    assert (bad.status, bad.body) == (
        400,
        {"error": "format must be one of flowdeploy, spaceoperator, got 'rust'"},
    )


def test_the_commands_table_of_the_docs_is_the_catalogues() -> None:
    assert current(ROOT / "docs" / "flows.md") == table(), "run `make docs`"

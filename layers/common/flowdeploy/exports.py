"""`POST /data/export`: the caller's data in Space Operator's `ExportedUserData` shape, so it
can be imported here (into another account or instance) or upstream.

Flows carry their Space Operator columns as they were imported (or were sent to
`POST /flow`); a flow made here gets a stable uuid derived from its id. Wallets carry their
public keys only: a secret key never leaves the service (upstream's export decrypts them).
Tables this service does not keep are present with their header only.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flowdeploy import frames, kvstore, wallets
from flowdeploy.store import flows as flow_store

# Upstream's columns, in upstream's order (docker/export.json).
FLOW_COLUMNS = (
    "id",
    "uuid",
    "user_id",
    "name",
    "description",
    "is_public",
    "gg_marketplace",
    "created_at",
    "updated_at",
    "nodes",
    "edges",
    "viewport",
    "environment",
    "guide",
    "instructions_bundling",
    "current_network",
    "start_shared",
    "start_unverified",
    "parent_flow",
    "meta_nodes",
    "default_viewport",
)
WALLET_COLUMNS = (
    "id",
    "created_at",
    "type",
    "adapter",
    "public_key",
    "user_id",
    "description",
    "name",
    "icon",
    "purpose",
    "keypair",
)
HEADERS = {
    "users": ("id", "aud", "role"),
    "identities": ("provider_id", "user_id", "identity_data", "provider"),
    "pubkey_whitelists": ("pubkey", "info"),
    "users_public": ("user_id", "pub_key"),
    "apikeys": ("key_hash", "user_id", "name", "trimmed_key", "created_at"),
    "user_quotas": ("user_id", "kvstore_count", "kvstore_count_limit", "kvstore_size"),
    "node_definitions": ("id", "version", "name", "type", "ports", "config", "config_schema"),
}
FLOW_NAMESPACE = uuid.UUID("5d1f0c3e-9a57-4c55-8f0e-0d6a3c3b7f15")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def _text(value: Any) -> str | None:
    """A cell: None stays null; the keypair column is always empty (no secret leaves)."""
    return None if value is None else str(value)


def _flag(value: Any) -> str:
    return "t" if value else "f"


def _flow_line(row: dict[str, Any]) -> list[str | None]:
    values: dict[str, Any] = {
        **row,
        "uuid": row.get("uuid") or str(uuid.uuid5(FLOW_NAMESPACE, f"flow/{row['id']}")),
    }
    line: list[str | None] = []
    for column in FLOW_COLUMNS:
        value = values.get(column)
        if value is None:
            line.append(None)
        elif column in {"is_public", "start_shared", "start_unverified", "gg_marketplace"}:
            line.append(_flag(value))
        elif isinstance(value, dict | list) or column == "instructions_bundling":
            line.append(_json(value))
        else:
            line.append(str(value))
    return line


def export_user_data(user_id: str) -> dict[str, str]:
    """The caller's flows, wallets (public keys) and key-value stores, as upstream exports."""
    ids = [int(item.id) for item in flow_store.of_user(user_id)]
    items = flow_store.get_many(ids)
    flows = [flow_store.flow_row(items[flow_id]) for flow_id in ids if flow_id in items]
    rows = [wallets.upstream_row(wallet) for wallet in wallets.list_wallets(user_id)]
    wallet_lines = [[_text(row.get(column)) for column in WALLET_COLUMNS] for row in rows]
    metadata, kv_items = kvstore.exported(user_id)
    data = {"user_id": user_id}
    data.update({name: frames.write(columns, []) for name, columns in HEADERS.items()})
    data["flows"] = frames.write(FLOW_COLUMNS, [_flow_line(row) for row in flows])
    data["wallets"] = frames.write(WALLET_COLUMNS, wallet_lines)
    data["kvstore_metadata"] = frames.write(("user_id", "store_name", "stats_size"), metadata)
    data["kvstore"] = frames.write(
        ("user_id", "store_name", "key", "value", "last_updated"), kv_items
    )
    return data

"""`POST /data/import`: a Space Operator export (`ExportedUserData`) into the caller's account.

What is imported, always into the caller's account whatever user the export names:
- wallets: each public key becomes a wallet; a keypair in the export is encrypted with the
  wallet key (KMS) at once and never stored or logged in clear;
- flows: with this service's ids; every `interflow` / `interflow_instructions` reference and
  every `wallet` node's wallet id is rewritten to the new ids; a flow is saved only if it
  passes the same validation as `POST /flow`, and one that uses a command this service does
  not have or calls a flow that was not imported is skipped, saying why;
- key-value stores and their items.
Accounts, identities, API keys (hashed with upstream's secret) and upstream's node
definitions (this service's catalogue is `GET /nodes`) are not imported; the report says so.

Importing the same export again changes nothing new: each flow remembers where it came from
(`source`), a wallet is found by its public key, a store by its name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flowdeploy import frames, wallets
from flowdeploy.errors import ApiError, BadRequest, describe
from flowdeploy.imported_flows import import_flows

# ExportedUserData's tables.
TABLES = (
    "users",
    "identities",
    "pubkey_whitelists",
    "users_public",
    "wallets",
    "apikeys",
    "user_quotas",
    "kvstore",
    "kvstore_metadata",
    "flows",
    "node_definitions",
)
NOT_IMPORTED = {
    "users": "accounts are this service's own: you import into the account you are",
    "identities": "sign-in identities are this service's own",
    "pubkey_whitelists": "this service has no sign-up whitelist",
    "users_public": "profiles are not kept here",
    "apikeys": "API keys are stored hashed with Space Operator's scheme: create new ones "
    "with POST /apikey",
    "user_quotas": "this service has its own key-value store limits (README)",
    "node_definitions": "not needed: this service runs its own commands (GET /nodes lists "
    "them); flows that use others are skipped below",
}


class ExportedUserData(BaseModel):
    """Upstream's export: the exporting user's id and one `;`-separated table per key."""

    model_config = ConfigDict(extra="forbid", defer_build=True, populate_by_name=True)

    user_id: str = Field(min_length=1, max_length=100)
    users: str = ""
    identities: str = ""
    pubkey_whitelists: str = ""
    users_public: str = ""
    wallets: str = ""
    apikeys: str = ""
    user_quotas: str = ""
    kvstore: str = ""
    kvstore_metadata: str = ""
    flows: str = ""
    node_definitions: str = Field(default="", alias="nodes")


def _table(data: ExportedUserData, name: str) -> list[frames.Row]:
    try:
        return frames.read(getattr(data, name), name)
    except frames.FrameError as error:
        raise BadRequest(f"{name}: {error}") from None


def import_user_data(user_id: str, data: ExportedUserData) -> dict[str, Any]:
    """Import `data` into `user_id`'s account; the report of what was imported or skipped."""
    report: dict[str, Any] = {
        "source_user_id": data.user_id,
        "wallets": [],
        "flows": [],
        "kvstore": [],
        "missing_commands": {},
        "not_imported": {
            name: f"{len(rows)} row(s): {NOT_IMPORTED[name]}"
            for name in NOT_IMPORTED
            if (rows := _table(data, name))
        },
    }
    wallet_ids = _import_wallets(user_id, _table(data, "wallets"), report["wallets"])
    import_flows(user_id, _table(data, "flows"), data.user_id, wallet_ids, report)
    _import_kvstore(user_id, data, report["kvstore"])
    return report


# -- wallets ---------------------------------------------------------------------------


def _import_wallets(
    user_id: str, rows: list[frames.Row], report: list[dict[str, Any]]
) -> dict[str, str]:
    """Each wallet row in, through `POST /wallets/upsert`'s function; source wallet id ->
    this service's wallet id."""
    held = {wallet.pubkey: wallet for wallet in wallets.list_wallets(user_id)}
    mapping: dict[str, str] = {}
    for row in rows:
        source_id = str(row.get("id") or "")
        pubkey = (row.get("public_key") or "").strip()
        keypair = (row.get("keypair") or "").strip()
        entry: dict[str, Any] = {"source_id": source_id, "public_key": pubkey}
        report.append(entry)
        wallet = held.get(pubkey)
        if wallet is not None and (wallet.holds_secret or not keypair):
            entry.update(status="unchanged", reason="you already have it")
        else:
            try:
                wallet = wallets.upsert_wallet(user_id, _upsert_body(row, pubkey, keypair))
            except (ApiError, ValidationError) as error:
                reason = error.message if isinstance(error, ApiError) else describe(error)
                entry.update(status="skipped", reason=reason)
                continue
            entry.update(status="updated" if pubkey in held else "imported")
            entry["keypair"] = (
                "encrypted with the wallet key (KMS)"
                if keypair
                else "none: its holder signs when asked"
            )
        held[pubkey] = wallet
        kind = wallets.HARDCODED if wallet.holds_secret else wallets.ADAPTER
        entry.update(id=wallet.id, type=kind)
        mapping[source_id] = wallet.id
    return mapping


def _upsert_body(row: frames.Row, pubkey: str, keypair: str) -> wallets.UpsertWalletBody:
    """The export's wallet row as `POST /wallets/upsert` takes it (its user is the caller)."""
    fields = {
        "public_key": pubkey or None,
        "keypair": keypair or None,
        "name": (row.get("name") or row.get("description") or pubkey)[:100],
        "adapter": row.get("adapter"),
        "description": row.get("description"),
        "icon": row.get("icon"),
    }
    return wallets.UpsertWalletBody.model_validate({k: v for k, v in fields.items() if v})


# -- key-value stores --------------------------------------------------------------------


def _import_kvstore(user_id: str, data: ExportedUserData, report: list[dict[str, Any]]) -> None:
    from flowdeploy import kvstore

    stores = [row.get("store_name") for row in _table(data, "kvstore_metadata")]
    items = _table(data, "kvstore")
    names = sorted(
        {name for name in stores if name} | {r.get("store_name") or "" for r in items} - {""}
    )
    for name in names:
        entry: dict[str, Any] = {"store": name}
        report.append(entry)
        try:
            created = kvstore.ensure_store(user_id, name)
            count = 0
            for row in items:
                if row.get("store_name") == name and row.get("key") is not None:
                    kvstore.put_exported(user_id, name, str(row["key"]), row.get("value") or "null")
                    count += 1
        except kvstore.KvFailure as failure:
            entry.update(status="skipped", reason=str(failure))
            continue
        entry.update(status="imported" if created else "updated", items=count)

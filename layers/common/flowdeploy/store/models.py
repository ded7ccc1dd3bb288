"""pynamodb models: the tables of DESIGN.md §3, with keys and indexes beside the attributes.

template.yaml declares the same tables for AWS; the local stack creates them from
template.yaml, so these models only describe items, they never create tables.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
)
from pynamodb.models import Model

from flowdeploy.settings import settings

_cfg = settings()


def pack(document: Any) -> bytes:
    """Compact, compressed JSON: flow documents stay far below DynamoDB's 400 KB item limit."""
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)


def unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


# -- Flows ------------------------------------------------------------------


# What `GET /flow` lists of each flow (not its nodes and edges, which can be large).
FLOW_SUMMARY = (
    "name",
    "is_public",
    "start_shared",
    "start_unverified",
    "current_network",
    "created_at",
    "updated_at",
)


class UserFlowsIndex(GlobalSecondaryIndex["FlowItem"]):
    """A user's flows by id, with what `GET /flow` lists and what export and import read
    (`source`); the counter item has no user and is not in it."""

    class Meta:
        index_name = "UserFlowsIndex"
        projection = IncludeProjection([*FLOW_SUMMARY, "source"])

    user_id = UnicodeAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)


class FlowItem(Model):
    """A flow (id ≥ 1) or, at id 0, the counter that hands out flow ids."""

    class Meta:
        table_name = _cfg.flows_table

    id = NumberAttribute(hash_key=True)
    next_id = NumberAttribute(null=True)  # counter item only
    user_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    is_public = BooleanAttribute(default=False)
    start_shared = BooleanAttribute(default=False)
    start_unverified = BooleanAttribute(default=False)
    # Whether deployments of the flow may be read (`/deployment/read`): copied into each
    # deployment's snapshot when it is deployed, as upstream keeps it on the flow.
    read_enabled = BooleanAttribute(null=True)
    current_network = JSONAttribute(null=True)
    environment = JSONAttribute(null=True)
    # nodes + edges, packed: editors' documents are large and deeply nested.
    graph = BinaryAttribute(legacy_encoding=False, null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    # Where an imported flow came from ("<exporting user>/<its uuid or id>"): a second
    # import of the same export updates this flow instead of adding another.
    source = UnicodeAttribute(null=True)

    by_user = UserFlowsIndex()

    by_user = UserFlowsIndex()


COUNTER_ID = 0


# -- Deployments (one table: deployment, snapshot and tag items) -------------


class EntrypointIdIndex(GlobalSecondaryIndex["DeploymentItem"]):
    """A flow's deployments, newest first when scanned backwards (ids are UUIDv7)."""

    class Meta:
        index_name = "EntrypointIdIndex"
        projection = AllProjection()

    entrypoint = NumberAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class EntrypointTagIndex(GlobalSecondaryIndex["TagItem"]):
    """A flow's tags, sorted by name."""

    class Meta:
        index_name = "EntrypointTagIndex"
        projection = AllProjection()

    entrypoint = NumberAttribute(hash_key=True)
    tag = UnicodeAttribute(range_key=True)


class DeploymentsRecord(Model):
    class Meta:
        table_name = _cfg.deployments_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class DeploymentItem(DeploymentsRecord, discriminator="deployment"):
    """pk `DEPLOYMENT#<id>`, sk `DEPLOYMENT`: the row of the docs' flow_deployments table."""

    id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    user_id = UnicodeAttribute()
    entrypoint = NumberAttribute()
    start_permission = UnicodeAttribute()
    output_instructions = BooleanAttribute(default=False)
    action_identity = UnicodeAttribute(null=True)
    fees = JSONAttribute(default=list)
    solana_network = JSONAttribute()
    # Micro-lamports per compute unit of its transactions; null: from recent fees.
    compute_unit_price = NumberAttribute(null=True)
    # How the deployment shows as a Solana Action (Blink); null: defaults.
    action_title = UnicodeAttribute(null=True)
    action_icon = UnicodeAttribute(null=True)
    action_description = UnicodeAttribute(null=True)
    action_label = UnicodeAttribute(null=True)
    flow_ids = JSONAttribute(default=list)  # every flow in the snapshot, entrypoint first
    snapshot_parts = JSONAttribute(default=dict)  # flow id -> number of snapshot items
    wallet_ids = JSONAttribute(default=list)
    # Tags keep a copy of the fields a start needs (START_FIELDS), so `?flow=&tag=` is one
    # read. `tags` names every tag that may point here (a superset: a tag moved away stays
    # listed until the next PATCH), and `revision` goes up with every write that copies this
    # deployment's start fields onto a tag or changes them, each conditional on the revision
    # it read: copies and originals change together or not at all.
    tags = UnicodeSetAttribute(null=True)
    revision = NumberAttribute(null=True)

    by_entrypoint = EntrypointIdIndex()

    @staticmethod
    def key(deployment_id: str) -> tuple[str, str]:
        return f"DEPLOYMENT#{deployment_id}", "DEPLOYMENT"


# What `POST /deployment/start` needs of a deployment besides its id, owner and entrypoint.
START_FIELDS = ("start_permission", "output_instructions")


class SnapshotItem(DeploymentsRecord, discriminator="snapshot"):
    """pk `DEPLOYMENT#<id>`, sk `FLOW#<flow id>#<part>`: one frozen flow, packed and split."""

    deployment_id = UnicodeAttribute()
    flow_id = NumberAttribute()
    part = NumberAttribute()
    data = BinaryAttribute(legacy_encoding=False)

    @staticmethod
    def key(deployment_id: str, flow_id: int, part: int) -> tuple[str, str]:
        return f"DEPLOYMENT#{deployment_id}", f"FLOW#{flow_id:020d}#{part:04d}"


class TagItem(DeploymentsRecord, discriminator="tag"):
    """pk `TAG#<entrypoint>#<tag>`: the key is the (entrypoint, tag) pair, so a tag is unique."""

    user_id = UnicodeAttribute()
    entrypoint = NumberAttribute()
    tag = UnicodeAttribute()
    deployment_id = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    # Copies of the deployment's START_FIELDS (null on tags written before they existed).
    start_permission = UnicodeAttribute(null=True)
    output_instructions = BooleanAttribute(null=True)

    by_entrypoint = EntrypointTagIndex()

    @staticmethod
    def key(entrypoint: int, tag: str) -> tuple[str, str]:
        return f"TAG#{entrypoint}#{tag}", "TAG"


class FlowHeadItem(DeploymentsRecord, discriminator="flow"):
    """pk `FLOW#<entrypoint>`, sk `HEAD`: what writes about one flow's deployments and tags
    agree on, each in its transaction.

    `custom_tags` names the flow's tags besides `latest`, so a tag PUT counts them inside its
    conditional write; `deploys` goes up with every deploy, so a delete that picks the
    fallback for `latest` can make its write conditional on no deploy having committed since
    it looked (tags written before this item existed are not counted until they are moved).
    No `entrypoint`: it stays out of the indexes.
    """

    custom_tags = UnicodeSetAttribute(null=True)
    deploys = NumberAttribute(null=True)

    @staticmethod
    def key(entrypoint: int) -> tuple[str, str]:
        return f"FLOW#{entrypoint}", "HEAD"


class FlowDeploymentItem(DeploymentsRecord, discriminator="flow_deployment"):
    """pk `FLOW#<entrypoint>`, sk `DEPLOYMENT#<id>`: the flow's deployments in its own
    partition, written and deleted with the deployment, so they are listed newest first with
    a strongly consistent Query (the entrypoint index is only eventually consistent)."""

    @staticmethod
    def key(entrypoint: int, deployment_id: str) -> tuple[str, str]:
        return f"FLOW#{entrypoint}", f"DEPLOYMENT#{deployment_id}"


# -- Flow runs ---------------------------------------------------------------


class DeploymentRunsIndex(GlobalSecondaryIndex["FlowRunItem"]):
    """The docs' `flow_run.select().eq("deployment_id", id)`, newest first backwards."""

    class Meta:
        index_name = "DeploymentRunsIndex"
        projection = AllProjection()

    deployment_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class SweepIndex(GlobalSecondaryIndex["FlowRunItem"]):
    """Runs that are not final yet, oldest first: what the sweeper queries.

    Sparse: only queued and running runs carry `sweep_status`/`sweep_at`, and every final
    transition removes them, so the index holds the live runs, never the history.
    Keys only: the sweeper needs ids, then makes one conditional write per overdue run.
    """

    class Meta:
        index_name = "SweepIndex"
        projection = KeysOnlyProjection()

    sweep_status = UnicodeAttribute(hash_key=True)
    sweep_at = NumberAttribute(range_key=True)


class FlowRunItem(Model):
    class Meta:
        table_name = _cfg.flow_runs_table

    id = UnicodeAttribute(hash_key=True)
    deployment_id = UnicodeAttribute(null=True)
    flow_id = NumberAttribute()
    user_id = UnicodeAttribute()  # the deployment owner: the run is theirs
    caller = JSONAttribute()  # who started it: {"kind", "user_id", "pubkey"}
    origin = UnicodeAttribute(default="api")
    status = UnicodeAttribute()
    inputs = JSONAttribute(default=dict)
    outputs = JSONAttribute(null=True)
    error = UnicodeAttribute(null=True)
    action_signer = UnicodeAttribute(null=True)
    output_instructions = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    # Set by POST /flow_run/{id}/stop on a running run; the worker polls for it.
    stop_requested = UnicodeAttribute(null=True)
    # Epoch seconds by which the worker that claimed the run will have finished it.
    lease_until = NumberAttribute(null=True)
    # output_instructions: the transaction (base64) the run stopped at, for the caller to sign.
    transaction = UnicodeAttribute(null=True)
    # ... and what simulating it said: {err, error, logs, units_consumed, compute_unit_limit,
    # compute_unit_price}; a failure is shown, never a reason to withhold the transaction.
    simulation = JSONAttribute(null=True)
    # The id of the running run's open signature request (SignatureRequestItem).
    signature_request_id = UnicodeAttribute(null=True)
    # How many WebSocket subscriptions were ever made to the run while it was not final
    # (ConnectionsTable `RUN#<id>`): the worker reads it on its stop polls and when it
    # finishes, and looks the subscriptions up only when it grew.
    watchers = NumberAttribute(null=True)
    # api_input nodes waiting for a value: token -> {node_id, times, url, created_at,
    # expires_at, state (waiting | submitted | canceled), value (IValue JSON text)}.
    api_inputs: MapAttribute[str, Any] = MapAttribute(null=True)
    # Only while not final (SweepIndex): the status again, and for a queued run the epoch
    # second it was queued, for a running one the end of its worker's lease.
    sweep_status = UnicodeAttribute(null=True)
    sweep_at = NumberAttribute(null=True)

    by_deployment = DeploymentRunsIndex()
    by_sweep = SweepIndex()


class LiveRunsItem(Model):
    """A user's runs that are queued or running (ids; finished ones leave lazily)."""

    class Meta:
        table_name = _cfg.live_runs_table

    user_id = UnicodeAttribute(hash_key=True)
    runs = UnicodeSetAttribute(null=True)


# -- Signature requests ----------------------------------------------------------


class SignatureRequestItem(Model):
    """A signature a running run waits for, keyed by the integer id its answer names.

    `POST /signature/submit` finds it with one GetItem and answers it with one conditional
    UpdateItem; the run polls it. DynamoDB's TTL removes it a day after it expired.
    """

    class Meta:
        table_name = _cfg.signature_requests_table

    id = NumberAttribute(hash_key=True)  # 1 .. 2^53 - 1: exact as a JavaScript number
    flow_run_id = UnicodeAttribute()
    pubkey = UnicodeAttribute()
    message = UnicodeAttribute()  # base64 of the bytes to sign
    kind = UnicodeAttribute()  # "transaction_message" | "message"
    time = NumberAttribute()  # created, epoch milliseconds
    timeout = NumberAttribute()  # seconds the run waits
    expires_at = NumberAttribute()  # epoch seconds: no answer is taken after this
    # Signatures already made on this message (the fee payer's): [{"pubkey", "signature"}].
    signatures = JSONAttribute(null=True)
    # The verified answer, and the wallet's changed message (base64) if it sent one.
    signature = UnicodeAttribute(null=True)
    new_message = UnicodeAttribute(null=True)
    closed = BooleanAttribute(null=True)  # the run stopped waiting
    # The transaction's signature, when the signer's wallet sent it itself and the run found
    # it on chain before any answer: the request is closed then, and a late answer is a 409.
    landed_signature = UnicodeAttribute(null=True)
    remove_at = NumberAttribute()  # TTL attribute, epoch seconds


# -- Node runs and run logs (one table, one partition per run) -----------------


class NodeRunItem(Model):
    """What one node did in a run; sort key `NODE#<seq>`, in the order nodes finished."""

    class Meta:
        table_name = _cfg.run_records_table

    flow_run_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    node_id = UnicodeAttribute()
    command = UnicodeAttribute()
    flow_id = NumberAttribute(null=True)
    status = UnicodeAttribute()
    inputs = JSONAttribute(null=True)
    outputs = JSONAttribute(null=True)
    error = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute()
    times = NumberAttribute(default=0)  # the node's run number inside a foreach loop


class RunEventsItem(Model):
    """Events of a run, `EVENTS#<seq of the first>`: consecutive events (their encoded
    bodies, packed) written with the run's node records, replayed to late subscribers."""

    class Meta:
        table_name = _cfg.run_records_table

    flow_run_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    size = NumberAttribute()  # how many events
    events = BinaryAttribute(legacy_encoding=False)


class RunLogItem(Model):
    """One run log line (a `log` node's message or a node error); sort key `LOG#<seq>`."""

    class Meta:
        table_name = _cfg.run_records_table

    flow_run_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    time = UnicodeAttribute()
    level = UnicodeAttribute()
    node_id = UnicodeAttribute(null=True)
    content = UnicodeAttribute()


# -- API keys ----------------------------------------------------------------


class UserKeysIndex(GlobalSecondaryIndex["ApiKeyItem"]):
    class Meta:
        index_name = "UserKeysIndex"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class ApiKeyItem(Model):
    """Keyed by the SHA-256 of the key: the key itself is never stored."""

    class Meta:
        table_name = _cfg.api_keys_table

    key_hash = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    name = UnicodeAttribute()
    trimmed_key = UnicodeAttribute()
    created_at = UnicodeAttribute()

    by_user = UserKeysIndex()


# -- Wallets (one partition per user: wallets and their public-key claims) -----


class WalletsRecord(Model):
    class Meta:
        table_name = _cfg.wallets_table

    user_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class WalletItem(WalletsRecord, discriminator="wallet"):
    """sort key = the wallet id (UUIDv7): a user's wallets list oldest first."""

    name = UnicodeAttribute()
    pubkey = UnicodeAttribute()
    # KMS ciphertext of the 64-byte secret key (secret ‖ public), bound by its
    # encryption context to this user_id and wallet id. None: an adapter wallet (the key
    # stays in the user's wallet app; it signs through signature requests).
    encrypted_secret = BinaryAttribute(legacy_encoding=False, null=True)
    # Upstream's descriptive wallet columns, from POST /wallets/upsert: adapter,
    # description, icon.
    details = JSONAttribute(null=True)
    created_at = UnicodeAttribute()


class WalletPubkeyItem(WalletsRecord, discriminator="pubkey"):
    """sort key `PUBKEY#<pubkey>`: written with its wallet in one transaction, so a public
    key is held by at most one wallet of a user, and found with one GetItem.
    """

    wallet_id = UnicodeAttribute()

    @staticmethod
    def key(user_id: str, pubkey: str) -> tuple[str, str]:
        return user_id, f"PUBKEY#{pubkey}"


# -- Key-value stores (kv_* nodes; one table) ------------------------------------------


class KvRecord(Model):
    class Meta:
        table_name = _cfg.kv_store_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class KvQuotaItem(KvRecord, discriminator="quota"):
    """pk `USER#<user>`, sk `QUOTA`: the user's store count and bytes, kept in step with
    every write (each write's transaction conditions on the limits)."""

    store_count = NumberAttribute(default=0)
    size = NumberAttribute(default=0)

    @staticmethod
    def key(user_id: str) -> tuple[str, str]:
        return f"USER#{user_id}", "QUOTA"


class KvStoreItem(KvRecord, discriminator="store"):
    """pk `USER#<user>`, sk `STORE#<name>`: one store. Its items live under the store's
    `generation`, so a deleted and re-created store never sees the old items."""

    name = UnicodeAttribute()
    generation = UnicodeAttribute()
    size = NumberAttribute(default=0)
    item_count = NumberAttribute(default=0)
    created_at = UnicodeAttribute()

    @staticmethod
    def key(user_id: str, name: str) -> tuple[str, str]:
        return f"USER#{user_id}", f"STORE#{name}"

    def items_pk(self) -> str:
        return f"ITEMS#{self.generation}"


class KvValueItem(KvRecord, discriminator="item"):
    """pk `ITEMS#<store generation>`, sk the key: one item, its value as IValue JSON."""

    value = UnicodeAttribute()
    size = NumberAttribute()
    version = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()


# -- Wallet sign-in (one table: wallet users and used sign-in nonces) ------------------


class WalletUserItem(Model):
    """pk `USER#<pubkey>`: a wallet that signed in; its user id is derived from the key."""

    class Meta:
        table_name = _cfg.sign_in_table

    pk = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    last_sign_in_at = UnicodeAttribute()
    sign_ins = NumberAttribute()

    @staticmethod
    def key(pubkey: str) -> str:
        return f"USER#{pubkey}"


class UsedNonceItem(Model):
    """pk `NONCE#<nonce>`: a sign-in message already used; TTL removes it once expired."""

    class Meta:
        table_name = _cfg.sign_in_table

    pk = UnicodeAttribute(hash_key=True)
    remove_at = NumberAttribute()

    @staticmethod
    def key(nonce: str) -> str:
        return f"NONCE#{nonce}"


# -- Read cache (`/deployment/read`) --------------------------------------------------


class CachedReadItem(Model):
    """One read's answer for 300 s, keyed by a hash of (deployment, caller scope, inputs)."""

    class Meta:
        table_name = _cfg.read_cache_table

    key = UnicodeAttribute(hash_key=True)
    body = JSONAttribute()  # the outputs as one IValue
    etag = UnicodeAttribute()
    cached_at = NumberAttribute()  # epoch seconds
    expires_at = NumberAttribute()  # epoch seconds; TTL attribute (removed some time after)


# -- WebSocket connections and subscriptions (one table, TTL) -------------------------


class ConnectionItem(Model):
    """pk `CONN#<connection id>`, sk `CONN`: an open WebSocket connection and what its
    credentials proved (users, runs), the last stream id it was given, and the keys of its
    subscription items, so that forgetting it removes them too."""

    class Meta:
        table_name = _cfg.connections_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    connected_at = NumberAttribute(null=True)
    user_ids = UnicodeSetAttribute(null=True)
    run_ids = UnicodeSetAttribute(null=True)
    streams = NumberAttribute(null=True)
    subscriptions = UnicodeSetAttribute(null=True)  # "<pk> <sk>" of each
    remove_at = NumberAttribute()  # TTL: after API Gateway's 2-hour connection limit

    @staticmethod
    def key(connection_id: str) -> tuple[str, str]:
        return f"CONN#{connection_id}", "CONN"


class SubscriptionItem(Model):
    """pk `RUN#<flow run id>` (a run's events) or `SIGN#<user id>` (the signature requests
    of a user's runs), sk `<connection id>#<stream id>`: where to send them."""

    class Meta:
        table_name = _cfg.connections_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    connection_id = UnicodeAttribute()
    stream_id = NumberAttribute()
    # A run's subscription: the run's `watchers` count that counted it (1, 2, …).
    ticket = NumberAttribute(null=True)
    remove_at = NumberAttribute()

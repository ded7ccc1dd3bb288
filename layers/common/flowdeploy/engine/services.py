"""What a run offers its nodes beyond values: facts about the run and per-user stores.

RunFunction fills these in (`flowdeploy.runner`); tests give fakes or leave them out, and a
node that needs a missing one fails with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from flowdeploy.values import IValue

if TYPE_CHECKING:
    from collections.abc import Callable

    from solders.instruction import Instruction
    from solders.pubkey import Pubkey


@dataclass(frozen=True, slots=True)
class RunInfo:
    """`flow_run_info`'s facts: the run, the deployment's owner and who started it."""

    flow_run_id: str
    flow_owner: str
    started_by: str
    cluster: str


class KeyValueStore(Protocol):
    """The deployment owner's key-value stores (`kv_*` nodes)."""

    async def create_store(self, store: str) -> bool: ...

    async def delete_store(self, store: str) -> bool: ...

    async def read_item(self, store: str, key: str) -> IValue | None: ...

    async def write_item(self, store: str, key: str, value: IValue) -> IValue | None: ...

    async def delete_item(self, store: str, key: str) -> IValue | None: ...


@dataclass(frozen=True, slots=True)
class ApiInputRequest:
    """What an `api_input` node asks for: where to POST the value, until when."""

    node_id: str
    times: int
    timeout: float
    webhook_url: str | None = None
    webhook_headers: dict[str, str] = field(default_factory=dict)
    extra: IValue | None = None
    # The node's run log (level, text): what happened on the way, e.g. a webhook that failed.
    log: Callable[[str, str], None] | None = field(default=None, compare=False)


class ApiInputs(Protocol):
    """Pauses a node until a value is posted to its URL (upstream's `/flow/submit/{key}`)."""

    async def wait(self, request: ApiInputRequest) -> IValue: ...


class ServiceFailure(Exception):
    """A run service refused or failed; the node fails with this message."""


class ApiInputFailed(ServiceFailure):
    """The wait ended without a value: `timeout`, `canceled by user`, or the run ended."""


@dataclass(slots=True)
class RunServices:
    info: RunInfo | None = None
    kvstore: KeyValueStore | None = None
    api_inputs: ApiInputs | None = None


@dataclass(slots=True)
class InstructionCollector:
    """Where a flow run by `interflow_instructions` puts its Solana instructions instead of
    sending them: in the order its nodes produced them, with the keys that must sign."""

    instructions: list[Instruction] = field(default_factory=list)
    signers: list[Pubkey] = field(default_factory=list)

    def add(self, instructions: list[Instruction], signers: list[Pubkey]) -> None:
        self.instructions.extend(instructions)
        for signer in signers:
            if signer not in self.signers:
                self.signers.append(signer)

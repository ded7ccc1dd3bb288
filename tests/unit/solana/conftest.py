"""The local Solana RPC on 127.0.0.1, a client for it, and transaction factories."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana import LAMPORTS_PER_SOL
from flowdeploy.solana.rpc import SolanaRpc


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSolana]:
    with LocalSolana() as solana:
        yield solana


@pytest.fixture
def rpc(local: LocalSolana) -> SolanaRpc:
    return SolanaRpc(local.url, allow_private=True, timeout=5, backoff=0.01)


@pytest.fixture
def payer(local: LocalSolana) -> Keypair:
    """A fresh account holding 10 SOL."""
    keypair = Keypair()
    local.airdrop(keypair.pubkey(), 10 * LAMPORTS_PER_SOL)
    return keypair


def signed(
    payer: Keypair, instructions: list[Instruction], blockhash: Hash
) -> VersionedTransaction:
    message = MessageV0.try_compile(payer.pubkey(), instructions, [], blockhash)
    return VersionedTransaction(message, [payer])


def pay(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> VersionedTransaction:
    return signed(
        payer,
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))],
        blockhash,
    )


def call(url: str, method: str, *params: Any) -> dict[str, Any]:
    """One raw JSON-RPC call: the whole response envelope."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    return post(url, body.encode())


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


# -- a scripted endpoint in front of the local one -------------------------------


Step = Callable[[BaseHTTPRequestHandler, bytes], None]


class Scripted:
    """An HTTP endpoint that answers request N with `steps[N]` (the last step repeats)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.bodies: list[bytes] = []
        self.released = threading.Event()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                index = min(len(scripted.bodies), len(scripted.steps) - 1)
                scripted.bodies.append(body)
                scripted.steps[index](self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rpc?api-key=SECRET"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def reply(status: int, payload: bytes = b"", headers: dict[str, str] | None = None) -> Step:
    def step(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return step


def forward_to(url: str, *, then_drop: bool = False) -> Step:
    """Pass the request on to `url`; with `then_drop`, lose the answer (close the connection)."""

    def step(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        answer = json.dumps(post(url, body)).encode()
        if then_drop:
            handler.close_connection = True
            handler.wfile.flush()
            handler.connection.close()
            return
        reply(200, answer)(handler, body)

    return step


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*steps: Step) -> Scripted:
        made.append(Scripted(list(steps)))
        return made[-1]

    yield make
    for server in made:
        server.close()

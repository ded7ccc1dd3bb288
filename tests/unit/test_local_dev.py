"""What a new user meets first: `make dev` with a port taken, its banner, `make token`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from flowdeploy.local import devserver, token
from tests.conftest import ROOT


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def make_dev(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    return subprocess.run(
        [sys.executable, "-m", "flowdeploy.local", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_taken_api_port_says_how_to_choose_another(taken_port: int) -> None:
    done = make_dev("--port", str(taken_port), "--solana-port", "0")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port} for the API" in done.stderr
    assert f"make dev PORT={taken_port + 1}" in done.stderr
    assert "FLOWDEPLOY_URL" not in done.stdout


def test_a_taken_solana_port_says_how_to_let_it_pick_one(taken_port: int) -> None:
    done = make_dev("--port", "0", "--solana-port", str(taken_port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port} for the local Solana RPC" in done.stderr
    assert "make dev SOLANA_PORT=0" in done.stderr


def test_the_banner_shows_the_docs() -> None:
    text = devserver.banner("http://127.0.0.1:3000", "http://127.0.0.1:5000", "http://x:8899")
    assert "http://127.0.0.1:3000/docs" in text
    assert text.splitlines()[-1] == "FLOWDEPLOY_URL=http://127.0.0.1:3000"


def test_make_token_without_a_user_says_whose_token_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert token.main([]) == 0
    out, err = capsys.readouterr()
    user = err.split("for user ")[1].split()[0]
    assert str(uuid.UUID(user)) == user
    assert out.count(".") == 2, "stdout is the bare token, for $(make -s token)"


def test_make_token_with_a_user_prints_only_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert token.main([str(uuid.uuid4())]) == 0
    out, err = capsys.readouterr()
    assert (out.count("."), err) == (2, "")

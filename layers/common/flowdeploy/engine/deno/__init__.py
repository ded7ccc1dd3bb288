"""JavaScript / TypeScript nodes (upstream's Deno nodes), each run in its own Deno process.

The process gets no permission at all (no network, file system, environment, subprocess,
FFI or system information), an empty environment, a V8 heap limit, a limit on its data
memory (RLIMIT_DATA; V8 runs without its JIT so that this limit is a real one) and a wall
clock limit, after which it is killed. An import map resolves `jsr:@space-operator/
flow-lib` (any version) to the module shipped here and sends every other file URL nowhere,
so a script can import nothing but that module; remote and npm modules are refused too.
Inputs go in and outputs come back as IValue JSON. Nothing here is imported by a flow
without JavaScript nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowdeploy.values import IValue, IValueError

HERE = Path(__file__).resolve().parent
LIBRARY = HERE / "flow_lib"
RUNNER = HERE / "runner.ts"
FLOW_LIB = "jsr:@space-operator/flow-lib"
SUBMODULES = ("command", "common", "context", "value")
# Any version a script names: jsr:@space-operator/flow-lib@0.15.0, …@^0.15, …/context.
_SPECIFIER = re.compile(r"jsr:@space-operator/flow-lib(@[0-9A-Za-z.^~<>=*+-]+)?")
MAX_REPLY_BYTES = 4_000_000
STDERR_KEPT = 4_000
STDERR_READ_BYTES = 1_000_000  # read, to find V8's out-of-memory report in it


class ScriptFailed(Exception):
    """The JavaScript node failed; the message says why (its error, or the limit it hit),
    `logs` what it logged before."""

    def __init__(self, message: str, logs: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


@dataclass(frozen=True, slots=True)
class Sandbox:
    """Where Deno is and what one node run may use."""

    deno: str
    seconds: float = 10.0
    memory_mb: int = 128
    # Data memory beyond the heap: V8's own, ArrayBuffers, the runtime (about 32 MB).
    overhead_mb: int = 128

    @property
    def data_limit_kb(self) -> int:
        return (self.memory_mb + self.overhead_mb) * 1024


def find_deno(configured: str | None) -> str | None:
    """The Deno executable: DENO_PATH when set, else `deno` on PATH (a layer's /opt/bin)."""
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("deno")


def _work_root() -> Path:
    return Path(tempfile.gettempdir()) / f"flowdeploy-js-{os.getuid()}"


def prepare(source: str) -> Path:
    """The script's directory (named by its content, shared by runs of the same source):
    cmd.ts, main.ts and the import map that confines it."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:32]
    folder = _work_root() / digest
    if (folder / "import_map.json").exists():
        return folder
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=_ensure(_work_root())))
    (staging / "cmd.ts").write_text(source)
    (staging / "main.ts").write_text(
        f'import {{ main }} from "{RUNNER.as_uri()}";\n'
        'import * as command from "./cmd.ts";\n'
        "await main(command);\n"
    )
    (staging / "import_map.json").write_text(json.dumps(_import_map(source, folder)))
    try:
        staging.rename(folder)
    except OSError:  # another run prepared it first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _ensure(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _import_map(source: str, folder: Path) -> dict[str, Any]:
    library = LIBRARY.as_uri()
    imports: dict[str, str] = {
        # Every file URL not listed below resolves to a place that does not exist.
        "file:///": "file:///nonexistent-sandbox/",
        f"{library}/": f"{library}/",
        RUNNER.as_uri(): RUNNER.as_uri(),
        f"{folder.as_uri()}/": f"{folder.as_uri()}/",
    }
    prefixes = {FLOW_LIB} | {match.group(0) for match in _SPECIFIER.finditer(source)}
    for prefix in prefixes:
        imports[prefix] = f"{library}/mod.ts"
        for name in SUBMODULES:
            imports[f"{prefix}/{name}"] = f"{library}/{name}.ts"
    return {"imports": imports}


def command_line(sandbox: Sandbox, folder: Path) -> list[str]:
    limit = sandbox.data_limit_kb
    cpu = int(sandbox.seconds) + 2
    return [
        "/bin/sh",
        "-c",
        f'ulimit -d {limit} && ulimit -t {cpu} && exec "$0" "$@"',
        sandbox.deno,
        "run",
        "--quiet",
        "--no-prompt",
        "--no-config",
        "--no-lock",
        "--no-remote",
        "--no-npm",
        "--cached-only",
        f"--import-map={folder / 'import_map.json'}",
        f"--v8-flags=--max-old-space-size={sandbox.memory_mb},--jitless",
        str(folder / "main.ts"),
    ]


def _environment() -> dict[str, str]:
    cache = _ensure(Path(tempfile.gettempdir()) / f"flowdeploy-deno-{os.getuid()}")
    return {
        "DENO_DIR": str(cache),
        "NO_COLOR": "1",
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PROMPT": "1",
        "PATH": "/usr/bin:/bin",
    }


async def run(
    sandbox: Sandbox, source: str, request: dict[str, Any]
) -> tuple[dict[str, IValue], list[dict[str, str]]]:
    """Runs the node's script with `request` ({node, context, inputs}); its outputs and
    the lines it logged. ScriptFailed when it throws, is refused or passes a limit."""
    folder = prepare(source)
    process = await asyncio.create_subprocess_exec(
        *command_line(sandbox, folder),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(),
        cwd=folder,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            _exchange(process, json.dumps(request).encode()), timeout=sandbox.seconds
        )
    except TimeoutError:
        raise ScriptFailed(
            f"the JavaScript node ran past its time limit of {sandbox.seconds:g} s and was stopped"
        ) from None
    finally:
        _kill(process)
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=5)
    return _reply(sandbox, process.returncode, stdout, stderr)


async def _exchange(process: asyncio.subprocess.Process, request: bytes) -> tuple[bytes, bytes]:
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(request)
        await process.stdin.drain()
        process.stdin.close()
    stderr_task = asyncio.ensure_future(_read_up_to(process.stderr, STDERR_READ_BYTES))
    stdout = await process.stdout.read(MAX_REPLY_BYTES + 1)
    if len(stdout) > MAX_REPLY_BYTES:
        stderr_task.cancel()
        raise ScriptFailed(f"the JavaScript node wrote over {MAX_REPLY_BYTES:,} bytes of output")
    await process.wait()
    return stdout, await stderr_task


async def _read_up_to(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything the stream says until it ends, the first `limit` bytes of it (a single
    read returns only what has arrived so far: V8 writes its heap report in pieces)."""
    kept = bytearray()
    while chunk := await stream.read(65_536):
        kept += chunk[: max(0, limit - len(kept))]
    return bytes(kept)


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _reply(
    sandbox: Sandbox, returncode: int | None, stdout: bytes, stderr: bytes
) -> tuple[dict[str, IValue], list[dict[str, str]]]:
    errors = stderr.decode(errors="replace")
    problem = errors[:STDERR_KEPT].strip()
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        if "out of memory" in errors or "heap limit" in errors:
            raise ScriptFailed(
                f"the JavaScript node went over its memory limit of {sandbox.memory_mb} MB"
            )
        if returncode is not None and returncode < 0 and -returncode == signal.SIGXCPU:
            raise ScriptFailed(
                f"the JavaScript node used more than {int(sandbox.seconds) + 2} s of CPU"
            )
        shown = _clean(problem) or f"it exited with status {returncode}"
        raise ScriptFailed(f"the JavaScript node failed: {shown}")
    logs = [line for line in reply.get("logs") or [] if isinstance(line, dict)]
    if "Err" in reply:
        message = str(reply["Err"])
        if "allocation failed" in message:
            message += f" (the memory limit is {sandbox.memory_mb} MB)"
        raise ScriptFailed(message, logs)
    outputs = reply.get("Ok")
    if not isinstance(outputs, dict):
        raise ScriptFailed("the JavaScript node returned no outputs object")
    decoded: dict[str, IValue] = {}
    for name, value in outputs.items():
        try:
            decoded[name] = IValue.from_json(value, f"output {name!r}")
        except IValueError as error:
            raise ScriptFailed(f"the JavaScript node returned an invalid value: {error}") from None
    return decoded, logs


def _clean(text: str) -> str:
    """Deno's error text without its colour codes and the script folder's path."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return re.sub(rf"(file://)?{re.escape(str(_work_root()))}/[0-9a-f]+/", "", text)

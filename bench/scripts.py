"""Script nodes: what a flow with Rhai or JavaScript nodes pays, and a flow without them not.

- Rhai: importing lark, building the parser's tables in a fresh process (no cache: the first
  script of a Lambda container), loading them from the temp-directory cache, compiling a
  script once the parser exists, and running upstream's Collatz-Core script.
- JavaScript: a Deno node run with an empty DENO_DIR (the first of a container: Deno
  transpiles and caches the runner and flow-lib) and warm, one at a time and 10 at once.
- Neither lark nor the Deno machinery is imported by `import flowdeploy.engine`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.report import LAYER, ROOT, Row, median, python

RUNS = 5


def _probe(tmp: Path, *args: str) -> dict[str, Any]:
    """Run bench.script_probe with `tmp` as its temp directory: the caches the bench empties
    for its cold measures are its own, never those of a `make dev` running beside it."""
    env = {**os.environ, "PYTHONPATH": f"{LAYER}:{ROOT}", "TMPDIR": str(tmp)}
    return dict(json.loads(python("-m", "bench.script_probe", *args, env=env)))


def _rhai(tmp: Path, cold: bool) -> dict[str, Any]:
    if cold:
        for stale in tmp.glob("flowdeploy-rhai-*.lark"):
            stale.unlink()
    return _probe(tmp, "rhai")


def _deno(tmp: Path) -> dict[str, Any] | None:
    executable = os.environ.get("DENO_PATH") or str(ROOT / ".tools" / "deno" / "deno")
    if not Path(executable).is_file():
        return None
    for folder in (f"flowdeploy-deno-{os.getuid()}", f"flowdeploy-js-{os.getuid()}"):
        shutil.rmtree(tmp / folder, ignore_errors=True)
    return _probe(tmp, "deno", executable, str(RUNS))


def measure() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="flowdeploy-bench-") as tmp:
        return _measure(Path(tmp))


def _measure(tmp: Path) -> list[Row]:
    cold = _rhai(tmp, cold=True)
    warm = [_rhai(tmp, cold=False) for _ in range(3)]
    rows = [
        Row(
            "scripts",
            "import flowdeploy.engine loads lark / rhai / deno",
            ", ".join(cold["loaded"]) or "none",
            "none",
            not cold["loaded"],
        ),
        Row("scripts", "lark import", f"{median([float(w['lark']) for w in warm]) * 1000:.0f} ms"),
        Row(
            "scripts",
            "Rhai parser tables built (first script of a process, no cache)",
            f"{float(cold['first']) * 1000:.0f} ms",
        ),
        Row(
            "scripts",
            "Rhai parser tables from the temp-directory cache",
            f"{median([float(w['first']) for w in warm]) * 1000:.0f} ms",
        ),
        Row(
            "scripts",
            "compile Collatz-Core's script (parser ready)",
            f"{median([float(w['compile_ms']) for w in warm]):.1f} ms",
        ),
        Row(
            "scripts",
            "run Collatz-Core's script",
            f"{median([float(w['run_us']) for w in warm]):.0f} µs",
        ),
    ]
    found = _deno(tmp)
    if found is None:
        rows.append(Row("scripts", "Deno node run", "Deno not installed (make)"))
        return rows
    rows += [
        Row(
            "scripts",
            "Deno node run, empty DENO_DIR (a container's first)",
            f"{float(found['first']) * 1000:.0f} ms",
        ),
        Row(
            "scripts",
            "Deno node run, warm (median)",
            f"{float(found['warm']) * 1000:.0f} ms",
        ),
        Row(
            "scripts",
            "10 Deno node runs at once",
            f"{float(found['burst']) * 1000:.0f} ms",
        ),
    ]
    return rows

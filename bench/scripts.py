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


def _rhai(cache: Path | None) -> dict[str, Any]:
    if cache is not None:
        for stale in cache.glob("flowdeploy-rhai-*.lark"):
            stale.unlink()
    env = {**os.environ, "PYTHONPATH": f"{LAYER}:{ROOT}"}
    return dict(json.loads(python("-m", "bench.script_probe", "rhai", env=env)))


def _deno() -> dict[str, Any] | None:
    executable = os.environ.get("DENO_PATH") or str(ROOT / ".tools" / "deno" / "deno")
    if not Path(executable).is_file():
        return None
    root = Path(tempfile.gettempdir())
    for folder in (f"flowdeploy-deno-{os.getuid()}", f"flowdeploy-js-{os.getuid()}"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": f"{LAYER}:{ROOT}"}
    found = python("-m", "bench.script_probe", "deno", executable, str(RUNS), env=env)
    return dict(json.loads(found))


def measure() -> list[Row]:
    cold = _rhai(Path(tempfile.gettempdir()))
    warm = [_rhai(None) for _ in range(3)]
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
    found = _deno()
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

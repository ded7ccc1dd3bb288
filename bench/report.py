"""Rows of the bench table, and how to print them."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "common"


@dataclass(frozen=True)
class Row:
    """One measured figure: `value` against `budget` (empty: printed for information)."""

    section: str
    measure: str
    value: str
    budget: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("ok" if self.ok else "MISS")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def table(rows: Iterable[Row]) -> str:
    header = ("section", "measure", "value", "budget", "", "absolute / notes")
    lines = [header] + [(r.section, r.measure, r.value, r.budget, r.verdict, r.note) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


def print_rows(rows: Sequence[Row]) -> int:
    """Print the table; the exit status says whether every budget held."""
    print(f"machine: {machine()}")
    print(table(rows))
    missed = [r for r in rows if r.ok is False]
    if missed:
        print(f"{len(missed)} budget(s) missed", file=sys.stderr)
    return 1 if missed else 0


def python(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run the bench's own Python in a fresh process; its stdout."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout

"""`make bench` = `python -m bench [section ...]`: every section, one table."""

from __future__ import annotations

import importlib
import sys

from bench.report import Row, print_rows

SECTIONS = (
    "cold_start",
    "round_trips",
    "engine",
    "live",
    "load",
    "memory",
    "local_memory",
    "scripts",
)


def main(argv: list[str]) -> int:
    chosen = argv or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name in chosen:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows += importlib.import_module(f"bench.{name}").measure()
    return print_rows(rows)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

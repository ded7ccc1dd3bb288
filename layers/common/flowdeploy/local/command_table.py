"""The commands table of docs/flows.md, generated from the catalogue (`GET /nodes`).

`make docs` rewrites the table between its markers; a test fails when the page and the
registry disagree. Local tooling: never imported by a function.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- commands: generated from GET /nodes by `make docs` -->"
END = "<!-- end of commands -->"
FORMAT_NAMES = {"flowdeploy": "ours", "spaceoperator": "Space Operator"}


def _ports(ports: list[dict[str, Any]], output: bool) -> str:
    shown = []
    for port in ports:
        optional = port["optional"] if output else not port["required"]
        kind = port["type"] if output else "/".join(port["type_bounds"])
        text = f"`{port['name']}`{'?' if optional else ''}"
        if kind not in {"free", ""}:
            text += f" ({kind})"
        if not output and port.get("passthrough"):
            text += " ⇢"
        shown.append(text)
    return ", ".join(shown) or "none"


def rows() -> list[str]:
    """One table row per command declaration, both formats in one row when shared; a
    family of commands (rhai_script_0x1 … 5x5) in one row, shown by its widest member."""
    from flowdeploy.engine.command import FORMATS, REGISTRIES

    rows: list[str] = []
    seen: set[int] = set()
    families: dict[str, dict[str, Any]] = {}
    for registry in REGISTRIES.values():
        for member in registry.values():
            if member.family is not None:
                families.setdefault(member.family, {})[member.name] = member
    names = sorted({name for registry in REGISTRIES.values() for name in registry})
    for name in names:
        for document_format in FORMATS:
            command = REGISTRIES[document_format].get(name)
            if command is None or id(command) in seen:
                continue
            seen.add(id(command))
            shown = f"`{name}`"
            if command.family is not None:
                members = families.pop(command.family, None)
                if members is None:
                    continue  # the family has its row
                command = max(members.values(), key=lambda m: (len(m.inputs), len(m.outputs)))
                first, last = min(members), max(members)
                shown = f"`{command.family}`: `{first}` … `{last}`"
            entry = command.catalogue_entry(document_format)
            formats = " and ".join(FORMAT_NAMES[f] for f in command.formats)
            if command.dynamic_ports:
                ports = "from the node (see below)"
            else:
                ports = (
                    f"{_ports(entry['ports']['inputs'], False)} → "
                    f"{_ports(entry['ports']['outputs'], True)}"
                )
            description = entry["description"].replace("|", "\\|")
            rows.append(f"| {shown} | {formats} | {ports} | {description} |")
    return rows


def table() -> str:
    head = "| command | format | ports: inputs → outputs | what it does |\n|---|---|---|---|\n"
    return head + "\n".join(rows()) + "\n"


def rewrite(page: Path) -> bool:
    """Put the current table into `page`; whether it changed."""
    text = page.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    updated = f"{text[:start]}\n{table()}{text[end:]}"
    if updated != text:
        page.write_text(updated)
    return updated != text


def current(page: Path) -> str:
    """The table as the page has it."""
    text = page.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n") + "\n"


if __name__ == "__main__":
    changed = rewrite(Path(sys.argv[1]))
    print(f"{sys.argv[1]}: {'updated' if changed else 'unchanged'}")

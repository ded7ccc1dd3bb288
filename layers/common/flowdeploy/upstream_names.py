"""Space Operator's names for things, read the way upstream reads them.

Kept apart from the engine so that code reading flow documents without running them (deploy,
import) does not load the engine.
"""

from __future__ import annotations

SCOPE = "@spo/"


def unscoped(name: str) -> str:
    """A command name without upstream's scope: `@spo/std.transfer_sol.0.1` and
    `@spo/transfer_sol` are `transfer_sol` (and `kv_explorer` is `kvexplorer`)."""
    if not name.startswith(SCOPE):
        return name
    parts = name.removeprefix(SCOPE).split(".")
    base = parts[1] if len(parts) >= 3 else parts[0]
    return {"kv_explorer": "kvexplorer", "file_explorer": "fileexplorer"}.get(base, base)

"""The real handlers in-process against moto, routed as the local stack routes them.

Reuses the unit tests' environment and `Api` driver, so the bench measures exactly what
the round-trip tests assert.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.report import ROOT


@contextmanager
def local_api() -> Iterator[Any]:
    """An `Api` (tests/unit/api.py) over fresh in-memory tables and queues."""
    import os

    import tests.conftest  # noqa: F401 - sets the environment before flowdeploy loads
    from flowdeploy.local import calls

    calls.install()  # before the first AWS client, so every call can be counted

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # metrics lines would garble the table
    from moto import mock_aws

    from flowdeploy.local.stack import provision
    from flowdeploy.local.template import Template
    from tests.unit.api import Api

    with mock_aws():
        provision(Template(ROOT / "template.yaml"))
        yield Api()


def chain(length: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`const 0` then `add 1` nodes in a line: nodes and edges of a flow document."""
    from tests.unit.engine.flows import edge, node

    nodes = [node("n0", "const", value=0)]
    nodes += [node(f"n{i}", "add", b=1) for i in range(1, length)]
    edges = [edge("n0", "n1", into="a")] if length > 1 else []
    edges += [edge(f"n{i - 1}", f"n{i}", "result", "a") for i in range(2, length)]
    return nodes, edges

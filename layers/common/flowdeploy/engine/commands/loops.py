"""Loops: foreach sends an array's elements one at a time, collect gathers them back."""

from __future__ import annotations

from flowdeploy.engine.command import BOTH, Command, NodeContext, Port, register
from flowdeploy.values import ARRAY, U64, IValue


@register
class Foreach(Command):
    """Runs the nodes fed by `element` once per element of `array` (a non-array value is a
    list of one); `index` gives each element's position. An empty array runs them never."""

    name = "foreach"
    formats = BOTH
    inputs = (Port("array", types=("json",), description="the array to go through"),)
    outputs = (
        Port("element", description="one element per run of the nodes it feeds"),
        Port("index", types=("u64",), description="the element's position, from 0"),
    )
    splits_arrays = True

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        array = inputs["array"]
        elements = array.value if array.tag == ARRAY and isinstance(array.value, list) else None
        if elements is None:
            elements = [array]
        return {
            "element": IValue(ARRAY, list(elements)),
            "index": IValue(ARRAY, [IValue(U64, index) for index in range(len(elements))]),
        }


@register
class Collect(Command):
    """Gathers every value sent to `element` into `array`, in element order, once all the
    nodes before it are done (an empty loop gives an empty array)."""

    name = "collect"
    formats = BOTH
    inputs = (Port("element", required=False, description="a value from each run of a loop"),)
    outputs = (Port("array", types=("array",), description="the values, in element order"),)
    gathers = True

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"array": inputs.get("element", IValue(ARRAY, []))}

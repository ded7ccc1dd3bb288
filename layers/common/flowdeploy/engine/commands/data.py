"""Strings and JSON: concat, format, json_get, json_set."""

from __future__ import annotations

import re

from flowdeploy.engine.command import (
    Command,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    ConversionError,
    bounded,
    check_size,
    parse_json_text,
    to_string,
    to_text,
)
from flowdeploy.values import ARRAY, MAP, STRING, IValue, IValueError


@register
class Concat(Command):
    """`result` = `a` + `separator` + `b`; non-string values are written as text."""

    name = "concat"
    inputs = (Port("a"), Port("b"), Port("separator", required=False))
    outputs = (Port("result"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        separator = inputs.get("separator")
        joint = "" if separator is None else convert_input(inputs, "separator", to_string)
        return {"result": bounded(to_text(inputs["a"]) + joint + to_text(inputs["b"]))}


APPEND = "-"  # the JSON Pointer array index past the end
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@register
class Format(Command):
    """`result` = `template` with each `{name}` replaced by `values[name]` (`{{`, `}}` escape).

    Only plain names are substituted: no attribute access or format specs.
    """

    name = "format"
    inputs = (Port("template"), Port("values", required=False))
    outputs = (Port("result"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        template = convert_input(inputs, "template", to_string)
        values = inputs.get("values")
        members: dict[str, IValue] = {}
        if values is not None:
            if not isinstance(values.value, dict):
                raise NodeError(f"input 'values': expected a map (M), got {values.tag}")
            members = values.value

        def substitute(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in {"{{", "}}"}:
                return token[0]
            name = match.group(1)
            if name is None:
                raise NodeError(f"template: unmatched {token!r}; write {token * 2} for a brace")
            if name not in members:
                raise NodeError(f"template: no value named {name!r} in input 'values'")
            return to_text(members[name])

        return {"result": bounded(_PLACEHOLDER.sub(substitute, template))}


def _document(inputs: dict[str, IValue]) -> IValue:
    document = inputs["json"]
    if document.tag == STRING and isinstance(document.value, str):
        try:
            return parse_json_text(document.value, "json")
        except ConversionError as error:
            raise NodeError(f"input 'json': {error}") from None
    return document


def _pointer(inputs: dict[str, IValue]) -> list[str]:
    """A JSON Pointer (RFC 6901) as its reference tokens; the leading '/' is optional."""
    path = convert_input(inputs, "path", to_string)
    if path in {"", "/"}:
        return []
    path = path.removeprefix("/")
    return [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")]


def _index(step: str, length: int) -> int | None:
    canonical = step == "0" or not step.startswith("0")
    if step.isascii() and step.isdigit() and canonical:
        index = int(step)
        return index if index < length else None
    return None


@register
class JsonGet(Command):
    """`value` at JSON Pointer `path` inside `json` (a map/array, or JSON text); null if absent."""

    name = "json_get"
    inputs = (Port("json"), Port("path"))
    outputs = (Port("value"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        current = _document(inputs)
        for token in _pointer(inputs):
            children = current.value
            if current.tag == MAP and isinstance(children, dict) and token in children:
                current = children[token]
            elif current.tag == ARRAY and isinstance(children, list):
                index = _index(token, len(children))
                if index is None:
                    return {"value": NULL_VALUE}
                current = children[index]
            else:
                return {"value": NULL_VALUE}
        return {"value": current}


@register
class JsonSet(Command):
    """`json` with `value` put at JSON Pointer `path`: missing map keys are created,
    an array index replaces its element and `-` appends."""

    name = "json_set"
    inputs = (Port("json"), Port("path"), Port("value"))
    outputs = (Port("json"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        tokens = _pointer(inputs)
        try:
            return {"json": check_size(_put(_document(inputs), tokens, inputs["value"], ""))}
        except IValueError as error:
            raise NodeError(f"the result is not a valid value: {error.reason}") from None


def _put(document: IValue, tokens: list[str], value: IValue, where: str) -> IValue:
    if not tokens:
        return value
    token, rest = tokens[0], tokens[1:]
    here = f"{where}/{token}"
    children = document.value
    if document.tag == MAP and isinstance(children, dict):
        child = children.get(token, IValue(MAP, {}))
        return IValue(MAP, {**children, token: _put(child, rest, value, here)})
    if document.tag == ARRAY and isinstance(children, list):
        if token == APPEND:
            return IValue(ARRAY, [*children, _put(IValue(MAP, {}), rest, value, here)])
        index = _index(token, len(children))
        if index is None:
            raise NodeError(f"path {here}: no element {token!r} in an array of {len(children)}")
        updated = list(children)
        updated[index] = _put(children[index], rest, value, here)
        return IValue(ARRAY, updated)
    if document.tag == "N":
        return IValue(MAP, {token: _put(IValue(MAP, {}), rest, value, here)})
    raise NodeError(f"path {where or '/'}: cannot go inside a {document.tag} value")

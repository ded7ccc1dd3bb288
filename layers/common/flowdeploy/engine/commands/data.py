"""Strings and JSON: concat, format, json_get, json_set; to_string, json_extract, json_insert."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from flowdeploy import base58
from flowdeploy.engine.command import (
    BOTH,
    Command,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    NUMERIC_TAGS,
    ConversionError,
    bounded,
    check_size,
    parse_json_text,
    parse_json_value,
    to_string,
    to_text,
)
from flowdeploy.values import (
    ARRAY,
    B32,
    B64,
    BOOL,
    F64,
    MAP,
    NULL,
    STRING,
    IValue,
    IValueError,
)


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


# -- Upstream's string and JSON commands (both formats) ---------------------------------


def display(value: IValue) -> str:
    """Upstream's `to_string`: text as it is, numbers as decimals, keys and signatures in
    base58, null as "", anything else as pretty-printed IValue JSON."""
    payload = value.value
    tag = value.tag
    if tag == NULL:
        text = ""
    elif tag == BOOL:
        text = "true" if payload else "false"
    elif tag == STRING and isinstance(payload, str):
        text = payload
    elif tag == F64 and isinstance(payload, float):
        text = _float_text(payload)
    elif tag in NUMERIC_TAGS:
        text = str(value.to_json()[tag])
    elif tag in {B32, B64} and isinstance(payload, bytes):
        text = base58.encode(payload)
    else:
        text = json.dumps(value.to_json(), indent=2, ensure_ascii=False)
    return text


def _float_text(number: float) -> str:
    """Rust's `f64` Display: the shortest digits that round-trip, never an exponent."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = format(Decimal(repr(number)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@register
class ToString(Command):
    """`result` is `stringify` as text: strings as they are, numbers as decimals, keys in
    base58, null as "", arrays and maps as pretty-printed IValue JSON."""

    name = "to_string"
    formats = BOTH
    inputs = (Port("stringify", description="the value to write as text"),)
    outputs = (Port("result", types=("string",), description="the text"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"result": bounded(display(inputs.get("stringify", NULL_VALUE)))}


def _path(text: str) -> list[str]:
    """Upstream's JSON Pointer parsing: the leading '/' is optional, `~0` and `~1` escape."""
    if text == "":
        return []
    segments = []
    for raw in text.removeprefix("/").split("/"):
        if raw.endswith("~") or re.search(r"~[^01]", raw):
            raise ConversionError(f"invalid path {text!r}: '~' must be followed by 0 or 1")
        segments.append(raw.replace("~1", "/").replace("~0", "~"))
    return segments


def _path_rule(value: IValue) -> list[str]:
    return _path(to_string(value))


def _parent(document: IValue, segments: list[str]) -> IValue | None:
    current = document
    for segment in segments:
        children = current.value
        if current.tag == MAP and isinstance(children, dict):
            found = children.get(segment)
        elif current.tag == ARRAY and isinstance(children, list):
            index = _index(segment, len(children))
            found = children[index] if index is not None else None
        else:
            return None
        if found is None:
            return None
        current = found
    return current


def _replace(document: IValue, segments: list[str], new: IValue) -> IValue:
    """`document` with the value at `segments` (which exists) replaced by `new`."""
    if not segments:
        return new
    head, rest = segments[0], segments[1:]
    children = document.value
    if document.tag == MAP and isinstance(children, dict):
        return IValue(MAP, {**children, head: _replace(children[head], rest, new)})
    assert isinstance(children, list)
    index = _index(head, len(children))
    assert index is not None
    updated = list(children)
    updated[index] = _replace(children[index], rest, new)
    return IValue(ARRAY, updated)


@register
class JsonExtract(Command):
    """Takes the value at `field_path` (a JSON Pointer) out of `json_input` (a map, an
    array, or JSON text): `value` is it (null if absent), `trimmed_json` the rest."""

    name = "json_extract"
    formats = BOTH
    inputs = (
        Port("json_input", description="a map, an array, or JSON text"),
        Port(
            "field_path",
            types=("string",),
            description="e.g. /data/records/0/url; the leading / is optional",
            rule=_path_rule,
        ),
    )
    outputs = (
        Port("value", description="the value at the path, null if there is none"),
        Port("trimmed_json", types=("json",), description="the input without that value"),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        document = inputs["json_input"]
        if document.tag == STRING and isinstance(document.value, str):
            try:
                document = parse_json_value(document.value)
            except ConversionError:
                raise NodeError("json_input is a string but not valid JSON") from None
        if document.tag not in {MAP, ARRAY}:
            return {"value": document, "trimmed_json": NULL_VALUE}
        segments = self.get(inputs, "field_path")
        if not segments:
            return {"value": document, "trimmed_json": NULL_VALUE}
        parent = _parent(document, segments[:-1])
        last = segments[-1]
        children = parent.value if parent is not None else None
        if isinstance(children, dict) and last in children:
            rest = {k: v for k, v in children.items() if k != last}
            removed, new_parent = children[last], IValue(MAP, rest)
        elif isinstance(children, list) and (index := _index(last, len(children))) is not None:
            removed = children[index]
            new_parent = IValue(ARRAY, children[:index] + children[index + 1 :])
        else:
            return {"value": NULL_VALUE, "trimmed_json": document}
        return {"value": removed, "trimmed_json": _replace(document, segments[:-1], new_parent)}


@register
class JsonInsert(Command):
    """Puts `value` at `path` (a JSON Pointer) in `json_input`: a map key is set, an array
    index inserts before that element and `-` appends; the parent must exist."""

    name = "json_insert"
    formats = BOTH
    inputs = (
        Port("json_input", types=("json",), passthrough=True, description="a map or array"),
        Port("path", types=("string",), description="where to insert", rule=_path_rule),
        Port("value", types=("json",), passthrough=True, description="the value to insert"),
    )
    outputs = (Port("updated_json", types=("json",), description="the result"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        document, value = inputs["json_input"], inputs["value"]
        segments = self.get(inputs, "path")
        if not segments:
            return {"updated_json": value}
        parent = _parent(document, segments[:-1])
        last = segments[-1]
        children = parent.value if parent is not None else None
        where = "/" + "/".join(segments)
        if isinstance(children, dict):
            new_parent = IValue(MAP, {**children, last: value})
        elif isinstance(children, list):
            if last == APPEND:
                new_parent = IValue(ARRAY, [*children, value])
            else:
                index = _index(last, len(children) + 1)
                if index is None:
                    raise NodeError(
                        f"path {where}: no position {last!r} in an array of {len(children)}"
                    )
                new_parent = IValue(ARRAY, [*children[:index], value, *children[index:]])
        else:
            raise NodeError(f"path {where}: there is no map or array to insert into")
        try:
            return {"updated_json": check_size(_replace(document, segments[:-1], new_parent))}
        except IValueError as error:
            raise NodeError(f"the result is not a valid value: {error.reason}") from None

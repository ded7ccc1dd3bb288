"""Rhai source to runnable Python closures, through lark's LALR parser.

`compile_source` parses a script and turns each syntax node into a closure taking the
run's context and the current scope, so a script is parsed and checked once (when its flow
is saved) and runs without looking at the syntax tree again. What the grammar accepts but
this interpreter does not run (modules, `eval`, `this`, …) is refused here, with
"not supported: …", so it is refused when the flow is saved.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from flowdeploy.engine.rhai import library
from flowdeploy.engine.rhai.operators import binary, contains, equals, not_found, unary
from flowdeploy.engine.rhai.runtime import (
    I64_MAX,
    MAX_EXPR_DEPTH,
    MAX_SOURCE_CHARS,
    UNIT,
    Budget,
    Char,
    FnPtr,
    LimitExceeded,
    Range,
    RhaiError,
    Thrown,
    clone,
    running,
    to_text,
    truthy,
    type_name,
)

GRAMMAR = Path(__file__).with_name("rhai.lark")

Code = Callable[["Ctx", "Scope"], Any]


class ScriptInvalid(ValueError):
    """A script that cannot run here: a syntax error or an unsupported feature."""


class Scope:
    """Variables of one block; lookups go outward. Closures keep their defining scope."""

    __slots__ = ("consts", "parent", "vars")

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.consts: set[str] = set()
        self.parent = parent

    def find(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None

    def get(self, name: str) -> Any:
        owner = self.find(name)
        if owner is None:
            raise RhaiError(f"variable not found: {name}")
        return owner.vars[name]

    def set(self, name: str, value: Any) -> None:
        owner = self.find(name)
        if owner is None:
            raise RhaiError(f"variable not found: {name}")
        if name in owner.consts:
            raise RhaiError(f"cannot assign to constant {name}")
        owner.vars[name] = value


class Ctx:
    """One run of a script: its limits, its functions, where print() goes."""

    __slots__ = ("budget", "functions", "log")

    def __init__(
        self,
        budget: Budget,
        functions: dict[tuple[str, int], Function],
        log: Callable[[str], None],
    ) -> None:
        self.budget = budget
        self.functions = functions
        self.log = log


class _Break(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Function:
    """A script's `fn name(params) { body }`: no access to the caller's variables."""

    __slots__ = ("body", "name", "params")

    def __init__(self, name: str, params: list[str], body: Code) -> None:
        self.name, self.params, self.body = name, params, body

    def __call__(self, ctx: Ctx, args: list[Any]) -> Any:
        scope = Scope()
        for param, arg in zip(self.params, args, strict=True):
            scope.vars[param] = clone(arg)
        return _call_body(ctx, self.body, scope)


def _call_body(ctx: Ctx, body: Code, scope: Scope) -> Any:
    ctx.budget.enter()
    try:
        return body(ctx, scope)
    except _Return as returned:
        return returned.value
    except (_Break, _Continue):
        raise RhaiError("break or continue outside a loop") from None
    finally:
        ctx.budget.leave()


def call_value(ctx: Ctx, fn: Any, args: list[Any]) -> Any:
    """Calls a function pointer or closure with `args`."""
    if not isinstance(fn, FnPtr):
        raise RhaiError(f"{type_name(fn)} is not a function")
    args = [*fn.curried, *args]
    if fn.function is not None:
        return fn.function(ctx, args)
    return call_named(ctx, fn.name, args, None)


def call_named(ctx: Ctx, name: str, args: list[Any], scope: Scope | None) -> Any:
    ctx.budget.step()
    script = ctx.functions.get((name, len(args)))
    if script is not None:
        return script(ctx, args)
    if scope is not None:
        owner = scope.find(name)
        if owner is not None and isinstance(owner.vars[name], FnPtr):
            return call_value(ctx, owner.vars[name], args)
    builtin = library.FUNCTIONS.get(name)
    if builtin is None:
        raise not_found(name, *args)
    return ctx.budget.sized(builtin(_Caller(ctx), args))


class _Caller:
    """What library functions may use: calling back into the script (map, filter, …)."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def call(self, fn: Any, *args: Any) -> Any:
        self.ctx.budget.step()
        return call_value(self.ctx, fn, list(args))

    def log(self, text: str) -> None:
        self.ctx.log(text)

    def sized(self, value: Any) -> Any:
        return self.ctx.budget.sized(value)


# -- parsing ---------------------------------------------------------------------------


@cache
def _parser() -> Any:
    """lark's LALR parser for rhai.lark: its tables are built once per process (and cached
    in the temp directory for the next process)."""
    from lark import Lark

    grammar = GRAMMAR.read_text()
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    cache_file = Path(tempfile.gettempdir()) / f"flowdeploy-rhai-{digest}.lark"
    return Lark(
        grammar,
        parser="lalr",
        start=["start", "expr_only"],
        propagate_positions=True,
        maybe_placeholders=False,
        cache=str(cache_file),
    )


def Tree(data: str, children: list[Any]) -> Any:
    from lark import Tree as LarkTree

    return LarkTree(data, children)


def _parse(source: str, start: str) -> Any:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

    try:
        return _parser().parse(source, start=start)
    except UnexpectedEOF:
        raise ScriptInvalid("syntax error: the script ends too early") from None
    except UnexpectedCharacters as error:
        raise ScriptInvalid(
            f"syntax error at line {error.line}, column {error.column}: unexpected "
            f"{source[error.pos_in_stream or 0 : (error.pos_in_stream or 0) + 1]!r}"
        ) from None
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        shown = f"'{token}'" if token is not None and str(token) else "end of script"
        raise ScriptInvalid(
            f"syntax error at line {error.line}, column {error.column}: unexpected {shown}"
        ) from None


class Program:
    """A compiled script."""

    __slots__ = ("body", "functions")

    def __init__(self, body: Code, functions: dict[tuple[str, int], Function]) -> None:
        self.body = body
        self.functions = functions

    def run(self, scope: Scope, budget: Budget, log: Callable[[str], None]) -> Any:
        ctx = Ctx(budget, self.functions, log)
        running(budget)
        try:
            return self.body(ctx, scope)
        except _Return as returned:
            return returned.value
        except (_Break, _Continue):
            raise RhaiError("break or continue outside a loop") from None
        except RecursionError:
            raise LimitExceeded("the script nests too deeply") from None
        finally:
            running(None)


def compile_source(source: str) -> Program:
    """The script compiled; ScriptInvalid for a syntax error or an unsupported feature."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ScriptInvalid(f"the script is over {MAX_SOURCE_CHARS:,} characters")
    tree = _parse(source, "start")
    compiler = _Compiler()
    try:
        body = compiler.stmts(tree.children[0], top=True)
    except RecursionError:
        raise ScriptInvalid(f"the script nests deeper than {MAX_EXPR_DEPTH} levels") from None
    return Program(body, compiler.functions)


# -- the compiler ----------------------------------------------------------------------


def _unsupported(what: str) -> ScriptInvalid:
    return ScriptInvalid(f"not supported: {what}")


def _located(code: Code, node: Any) -> Code:
    line = getattr(node.meta, "line", None) if hasattr(node, "meta") else None
    if line is None:
        return code

    def run(ctx: Ctx, scope: Scope) -> Any:
        try:
            return code(ctx, scope)
        except RhaiError as error:
            if not getattr(error, "located", False) and not isinstance(error, LimitExceeded):
                error.args = (f"line {line}: {error.args[0]}",)
                error.located = True  # type: ignore[attr-defined]
            raise

    return run


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "`": "`"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|\n\s*|.)")


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] == "\n":
            return ""  # a line continuation
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise ScriptInvalid(f"invalid escape sequence \\{code}")

    return _ESCAPE.sub(replace, text)


def _int_literal(text: str) -> int:
    digits = text.replace("_", "")
    value = int(digits, 0) if digits[:2].lower() in ("0x", "0o", "0b") else int(digits)
    if value > I64_MAX:
        raise ScriptInvalid(f"integer {text} is too large for i64")
    return value


def _const(value: Any) -> Code:
    return lambda ctx, scope: value


class _Compiler:
    def __init__(self) -> None:
        self.functions: dict[tuple[str, int], Function] = {}
        self.depth = 0

    # statements ----------------------------------------------------------------

    def stmts(self, node: Any, top: bool = False) -> Code:
        codes: list[Code] = []
        for child in node.children:
            if child.data == "fn_def":
                if not top:
                    raise ScriptInvalid("functions can only be defined at the top of a script")
                self.fn_def(child)
                continue
            codes.append(_located(self.stmt(child), child))
        if not codes:
            return _const(UNIT)
        if len(codes) == 1:
            return codes[0]

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = UNIT
            step = ctx.budget.step
            for code in codes:
                step()
                value = code(ctx, scope)
            return value

        return run

    def fn_def(self, node: Any) -> None:
        children = node.children
        if children[0].type == "PRIVATE":
            children = children[1:]
        name, *params, body = children
        names = [str(param) for param in params]
        if len(set(names)) != len(names):
            raise ScriptInvalid(f"function {name}: a parameter name is repeated")
        key = (str(name), len(names))
        if key in self.functions:
            raise ScriptInvalid(f"function {name} with {len(names)} parameters is defined twice")
        self.functions[key] = Function(str(name), names, self.block_body(body))

    def stmt(self, node: Any) -> Code:
        handler = getattr(self, f"s_{node.data}", None)
        if handler is not None:
            code: Code = handler(node)
            return code
        return self.expr(node)

    def s_let_stmt(self, node: Any) -> Code:
        name = str(node.children[0])
        value = self.expr(node.children[1]) if len(node.children) > 1 else _const(UNIT)

        def run(ctx: Ctx, scope: Scope) -> Any:
            scope.vars[name] = clone(value(ctx, scope))
            scope.consts.discard(name)
            if len(scope.vars) > ctx.budget.limits.variables:
                raise LimitExceeded(f"over {ctx.budget.limits.variables} variables in one block")
            return UNIT

        return run

    def s_const_stmt(self, node: Any) -> Code:
        name = str(node.children[0])
        value = self.expr(node.children[1])

        def run(ctx: Ctx, scope: Scope) -> Any:
            scope.vars[name] = clone(value(ctx, scope))
            scope.consts.add(name)
            return UNIT

        return run

    def s_assign(self, node: Any) -> Code:
        target, op_node, value_node = node.children
        op = str(op_node.children[0])
        value = self.expr(value_node)
        read = self.expr(target)
        store = self.store(target)
        if op == "=":
            return lambda ctx, scope: store(ctx, scope, clone(value(ctx, scope)))
        operator = op[:-1]

        def run(ctx: Ctx, scope: Scope) -> Any:
            current = read(ctx, scope)
            if operator == "??":
                result = value(ctx, scope) if current is UNIT else current
            elif operator == "+" and isinstance(current, list):
                added = value(ctx, scope)
                current.extend(clone(added) if isinstance(added, list) else [clone(added)])
                ctx.budget.sized(current)
                return UNIT
            elif operator == "+" and isinstance(current, dict):
                current.update(clone(library.as_map(value(ctx, scope))))
                ctx.budget.sized(current)
                return UNIT
            else:
                result = binary(operator, current, value(ctx, scope), ctx.budget)
            store(ctx, scope, result)
            return UNIT

        return run

    def store(self, target: Any) -> Callable[[Ctx, Scope, Any], Any]:
        """Where an assignment writes: a variable, an array element, a map entry."""
        kind = target.data
        if kind == "variable":
            name = str(target.children[0])

            def set_variable(ctx: Ctx, scope: Scope, value: Any) -> Any:
                scope.set(name, value)
                return UNIT

            return set_variable
        if kind in ("index", "property"):
            base = self.expr(target.children[0])
            key = (
                self.expr(target.children[2])
                if kind == "index"
                else _const(str(target.children[2]))
            )

            def set_item(ctx: Ctx, scope: Scope, value: Any) -> Any:
                container = base(ctx, scope)
                library.set_item(container, key(ctx, scope), value)
                ctx.budget.sized(container)
                return UNIT

            return set_item
        raise ScriptInvalid("the left side of an assignment must be a variable, index or property")

    def s_return_stmt(self, node: Any) -> Code:
        value = self.expr(node.children[0]) if node.children else _const(UNIT)

        def run(ctx: Ctx, scope: Scope) -> Any:
            raise _Return(value(ctx, scope))

        return run

    def s_throw_stmt(self, node: Any) -> Code:
        value = self.expr(node.children[0]) if node.children else _const(UNIT)

        def run(ctx: Ctx, scope: Scope) -> Any:
            raise Thrown(value(ctx, scope))

        return run

    def s_break_stmt(self, node: Any) -> Code:
        value = self.expr(node.children[0]) if node.children else _const(UNIT)

        def run(ctx: Ctx, scope: Scope) -> Any:
            raise _Break(value(ctx, scope))

        return run

    def s_continue_stmt(self, node: Any) -> Code:
        def run(ctx: Ctx, scope: Scope) -> Any:
            raise _Continue

        return run

    def s_do_stmt(self, node: Any) -> Code:
        body_node, mode, condition_node = node.children
        body = self.block_body(body_node)
        condition = self.expr(condition_node)
        until = str(mode.children[0]) == "until"

        def run(ctx: Ctx, scope: Scope) -> Any:
            while True:
                ctx.budget.step()
                try:
                    body(ctx, Scope(scope))
                except _Break as stop:
                    return stop.value
                except _Continue:
                    pass
                if truthy(condition(ctx, scope), "a do loop's condition") == until:
                    return UNIT

        return run

    def s_import_stmt(self, node: Any) -> Code:
        raise _unsupported("import (modules)")

    def s_export_stmt(self, node: Any) -> Code:
        raise _unsupported("export (modules)")

    # blocks ----------------------------------------------------------------------

    def block_body(self, node: Any) -> Code:
        return self.stmts(node.children[0])

    def block(self, node: Any) -> Code:
        body = self.block_body(node)
        return lambda ctx, scope: body(ctx, Scope(scope))

    def if_expr(self, node: Any) -> Code:
        condition = self.expr(node.children[0])
        then = self.block(node.children[1])
        otherwise = self.expr(node.children[2]) if len(node.children) > 2 else _const(UNIT)

        def run(ctx: Ctx, scope: Scope) -> Any:
            if truthy(condition(ctx, scope), "an if condition"):
                return then(ctx, scope)
            return otherwise(ctx, scope)

        return run

    def while_expr(self, node: Any) -> Code:
        condition = self.expr(node.children[0])
        body = self.block_body(node.children[1])

        def run(ctx: Ctx, scope: Scope) -> Any:
            while truthy(condition(ctx, scope), "a while condition"):
                ctx.budget.step()
                try:
                    body(ctx, Scope(scope))
                except _Break as stop:
                    return stop.value
                except _Continue:
                    pass
            return UNIT

        return run

    def loop_expr(self, node: Any) -> Code:
        body = self.block_body(node.children[0])

        def run(ctx: Ctx, scope: Scope) -> Any:
            while True:
                ctx.budget.step()
                try:
                    body(ctx, Scope(scope))
                except _Break as stop:
                    return stop.value
                except _Continue:
                    pass

        return run

    def for_expr(self, node: Any) -> Code:
        names = [str(child) for child in node.children[:-2]]
        iterable = self.expr(node.children[-2])
        body = self.block_body(node.children[-1])
        name = names[0]
        counter = names[1] if len(names) > 1 else None

        def run(ctx: Ctx, scope: Scope) -> Any:
            for index, item in enumerate(library.iterate(iterable(ctx, scope))):
                ctx.budget.step()
                inner = Scope(scope)
                inner.vars[name] = item
                if counter is not None:
                    inner.vars[counter] = index
                try:
                    body(ctx, inner)
                except _Break as stop:
                    return stop.value
                except _Continue:
                    pass
            return UNIT

        return run

    def try_expr(self, node: Any) -> Code:
        body = self.block(node.children[0])
        name = str(node.children[1]) if len(node.children) == 3 else None
        handler = self.block_body(node.children[-1])

        def run(ctx: Ctx, scope: Scope) -> Any:
            try:
                return body(ctx, scope)
            except LimitExceeded:
                raise
            except RhaiError as error:
                inner = Scope(scope)
                if name is not None:
                    inner.vars[name] = error.value if isinstance(error, Thrown) else str(error)
                return handler(ctx, inner)

        return run

    def switch_expr(self, node: Any) -> Code:
        subject = self.expr(node.children[0])
        cases: list[tuple[list[Any], Code | None, Code]] = []
        default: Code | None = None
        for case in node.children[1:]:
            if default is not None:
                raise ScriptInvalid("switch: the default case `_` must be the last")
            if case.data == "default_case":
                default = self.expr(case.children[0])
                continue
            *patterns, body_node = case.children
            guard = None
            if patterns and patterns[-1].data == "guard":
                guard = self.expr(patterns.pop().children[0])
            cases.append(([self.pattern(p) for p in patterns], guard, self.expr(body_node)))

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = subject(ctx, scope)
            for patterns, guard, body in cases:
                if any(_matches(pattern, value) for pattern in patterns) and (
                    guard is None or truthy(guard(ctx, scope), "a switch case condition")
                ):
                    return body(ctx, scope)
            return default(ctx, scope) if default is not None else UNIT

        return run

    def pattern(self, node: Any) -> Any:
        if node.data == "range_pattern":
            low, op, high = node.children
            start, end = self.pattern(low), self.pattern(high)
            if type(start) is not int or type(end) is not int:
                raise ScriptInvalid("switch: a range case takes integers")
            return Range(start, end, str(op.children[0]) == "..=")
        if node.data in ("true", "false"):
            return node.data == "true"
        if node.data == "unit":
            return UNIT
        if node.data == "negative_pattern":
            value = self.pattern(Tree("literal_pattern", node.children))
            return -value
        (child,) = node.children
        if hasattr(child, "data"):
            raise _unsupported("arrays and object maps as switch cases")
        kind, text = child.type, str(child)
        if kind == "INT":
            return _int_literal(text)
        if kind == "FLOAT":
            return float(text.replace("_", ""))
        if kind == "STRING":
            return _unescape(text[1:-1])
        if kind == "CHAR":
            return Char(_unescape(text[1:-1]))
        raise ScriptInvalid(f"switch: {text} is not a constant")

    # expressions -----------------------------------------------------------------

    def expr(self, node: Any) -> Code:
        if not hasattr(node, "data"):
            raise ScriptInvalid(f"unexpected {node}")
        self.depth += 1
        try:
            if self.depth > MAX_EXPR_DEPTH:
                raise ScriptInvalid(f"the script nests deeper than {MAX_EXPR_DEPTH} levels")
            handler = getattr(self, node.data, None)
            if handler is None:
                raise _unsupported(node.data.replace("_", " "))
            code: Code = handler(node)
            return code
        finally:
            self.depth -= 1

    def int(self, node: Any) -> Code:
        return _const(_int_literal(str(node.children[0])))

    def float(self, node: Any) -> Code:
        return _const(float(str(node.children[0]).replace("_", "")))

    def string(self, node: Any) -> Code:
        return _const(_unescape(str(node.children[0])[1:-1]))

    def char(self, node: Any) -> Code:
        text = _unescape(str(node.children[0])[1:-1])
        if len(text) != 1:
            raise ScriptInvalid(f"{node.children[0]} is not one character")
        return _const(Char(text))

    def template(self, node: Any) -> Code:
        text = str(node.children[0])[1:-1]
        parts: list[Code] = []
        position = 0
        while True:
            start = text.find("${", position)
            if start < 0 or (start > 0 and text[start - 1] == "\\"):
                parts.append(_const(_unescape(text[position:])))
                break
            parts.append(_const(_unescape(text[position:start])))
            end = _closing_brace(text, start + 2)
            tree = _parse(text[start + 2 : end], "expr_only")
            parts.append(self.expr(tree.children[0]))
            position = end + 1

        def run(ctx: Ctx, scope: Scope) -> Any:
            return ctx.budget.sized("".join(to_text(part(ctx, scope)) for part in parts))

        return run

    def true(self, node: Any) -> Code:
        return _const(True)

    def false(self, node: Any) -> Code:
        return _const(False)

    def unit(self, node: Any) -> Code:
        return _const(UNIT)

    def variable(self, node: Any) -> Code:
        name = str(node.children[0])
        if name in ("this", "global"):
            raise _unsupported(name)

        def run(ctx: Ctx, scope: Scope) -> Any:
            owner = scope.find(name)
            if owner is not None:
                return owner.vars[name]
            if name == "PI":  # upstream's engine constant-folds these
                return library.PI
            if name == "E":
                return library.E
            if any(key[0] == name for key in ctx.functions):
                return FnPtr(name)
            raise RhaiError(f"variable not found: {name}")

        return run

    def this(self, node: Any) -> Code:
        raise _unsupported("`this` (methods on script functions)")

    def namespaced_variable(self, node: Any) -> Code:
        raise _unsupported(f"modules ({'::'.join(map(str, node.children))})")

    def array(self, node: Any) -> Code:
        items = [self.expr(child) for child in node.children]

        def run(ctx: Ctx, scope: Scope) -> Any:
            return ctx.budget.sized([clone(item(ctx, scope)) for item in items])

        return run

    def object_map(self, node: Any) -> Code:
        entries: list[tuple[str, Code]] = []
        for item in node.children:
            key_token, value_node = item.children
            key = str(key_token)
            if key_token.type == "STRING":
                key = _unescape(key[1:-1])
            entries.append((key, self.expr(value_node)))

        def run(ctx: Ctx, scope: Scope) -> Any:
            return ctx.budget.sized({key: clone(value(ctx, scope)) for key, value in entries})

        return run

    def closure(self, node: Any) -> Code:
        *params, body_node = node.children
        names = [str(param) for param in params]
        body = self.expr(body_node)

        def run(ctx: Ctx, scope: Scope) -> Any:
            def call(ctx: Ctx, args: list[Any]) -> Any:
                if len(args) != len(names):
                    raise RhaiError(f"the closure takes {len(names)} argument(s), got {len(args)}")
                inner = Scope(scope)
                for param, arg in zip(names, args, strict=True):
                    inner.vars[param] = clone(arg)
                return _call_body(ctx, body, inner)

            return FnPtr("anonymous", call, params=len(names))

        return run

    def binary(self, node: Any) -> Code:
        left, op_node, right = node.children
        op = str(op_node.children[0])
        x, y = self.expr(left), self.expr(right)
        if op == "&&":
            return lambda ctx, scope: truthy(x(ctx, scope), "&&") and truthy(y(ctx, scope), "&&")
        if op == "||":
            return lambda ctx, scope: truthy(x(ctx, scope), "||") or truthy(y(ctx, scope), "||")
        if op in ("in", "!in"):
            negate = op == "!in"
            return lambda ctx, scope: contains(y(ctx, scope), x(ctx, scope)) != negate

        def run(ctx: Ctx, scope: Scope) -> Any:
            return binary(op, x(ctx, scope), y(ctx, scope), ctx.budget)

        return run

    def coalesce(self, node: Any) -> Code:
        x, y = self.expr(node.children[0]), self.expr(node.children[1])

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = x(ctx, scope)
            return y(ctx, scope) if value is UNIT else value

        return run

    def unary(self, node: Any) -> Code:
        op = str(node.children[0].children[0])
        operand = node.children[1]
        if op == "-" and operand.data in ("int", "float"):
            text = str(operand.children[0])
            if operand.data == "int":
                digits = text.replace("_", "")
                value = int(digits, 0) if digits[:2].lower() in ("0x", "0o", "0b") else int(digits)
                if value > I64_MAX + 1:
                    raise ScriptInvalid(f"integer -{text} is too large for i64")
                return _const(-value)
            return _const(-float(text.replace("_", "")))
        x = self.expr(operand)
        return lambda ctx, scope: unary(op, x(ctx, scope))

    def property(self, node: Any) -> Code:
        target, dot, name_token = node.children
        base = self.expr(target)
        name = str(name_token)
        safe = str(dot.children[0]) == "?."

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = base(ctx, scope)
            if safe and value is UNIT:
                return UNIT
            return library.get_property(value, name)

        return run

    def index(self, node: Any) -> Code:
        target, opener, key_node = node.children
        base, key = self.expr(target), self.expr(key_node)
        safe = str(opener.children[0]) == "?["

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = base(ctx, scope)
            if safe and value is UNIT:
                return UNIT
            return library.get_item(value, key(ctx, scope))

        return run

    def call(self, node: Any) -> Code:
        name_token, args_node = node.children
        name = str(name_token)
        if name in ("eval", "import", "export"):
            raise _unsupported(f"{name}()")
        if name in library.UNSUPPORTED:
            raise _unsupported(library.UNSUPPORTED[name])
        args = self.args(args_node)

        def run(ctx: Ctx, scope: Scope) -> Any:
            return call_named(ctx, name, [arg(ctx, scope) for arg in args], scope)

        return run

    def call_bang(self, node: Any) -> Code:
        raise _unsupported(f"{node.children[0]}!() (calls that share the caller's scope)")

    def namespaced_call(self, node: Any) -> Code:
        *path, args_node = node.children
        name = "::".join(str(part) for part in path)
        if name not in library.FUNCTIONS:
            raise _unsupported(f"modules ({name})")
        args = self.args(args_node)
        function = library.FUNCTIONS[name]

        def run(ctx: Ctx, scope: Scope) -> Any:
            ctx.budget.step()
            return function(_Caller(ctx), [arg(ctx, scope) for arg in args])

        return run

    def call_value(self, node: Any) -> Code:
        target, args_node = node.children
        fn = self.expr(target)
        args = self.args(args_node)
        return lambda ctx, scope: call_value(ctx, fn(ctx, scope), [a(ctx, scope) for a in args])

    def method(self, node: Any) -> Code:
        target, dot, name_token, args_node = node.children
        name = str(name_token)
        safe = str(dot.children[0]) == "?."
        if name in library.UNSUPPORTED:
            raise _unsupported(library.UNSUPPORTED[name])
        base = self.expr(target)
        args = self.args(args_node)
        # A method on a variable, element or property may change it in place (push, trim…).
        store = self.store(target) if target.data in ("variable", "index", "property") else None

        def run(ctx: Ctx, scope: Scope) -> Any:
            value = base(ctx, scope)
            if safe and value is UNIT:
                return UNIT
            values = [arg(ctx, scope) for arg in args]
            ctx.budget.step()
            if name in ("call", "curry") and isinstance(value, FnPtr):
                if name == "curry":
                    return FnPtr(
                        value.name, value.function, [*value.curried, *values], value.params
                    )
                return call_value(ctx, value, values)
            if isinstance(value, dict) and isinstance(value.get(name), FnPtr):
                return call_value(ctx, value[name], values)
            script = ctx.functions.get((name, len(values) + 1))
            if script is not None:
                return script(ctx, [value, *values])
            builtin = library.FUNCTIONS.get(name)
            if builtin is None:
                raise not_found(name, value, *values)
            result = builtin(_Caller(ctx), [value, *values])
            if isinstance(result, library.Changed):
                if store is not None:
                    store(ctx, scope, ctx.budget.sized(result.value))
                return result.result
            if isinstance(value, list | dict | bytearray):
                ctx.budget.sized(value)
            return ctx.budget.sized(result)

        return run

    def args(self, node: Any) -> list[Code]:
        return [self.expr(child) for child in node.children]


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for position in range(start, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    raise ScriptInvalid("an interpolation `${` in a string is not closed")


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, Range):
        return type(value) is int and value in pattern
    if type(pattern) is not type(value):
        return False
    return equals(pattern, value)


__all__ = [
    "Program",
    "Scope",
    "ScriptInvalid",
    "compile_source",
    "unary",
]

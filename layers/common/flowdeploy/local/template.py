"""Reads template.yaml so the local stack serves what AWS would: same tables, queues, routes.

Only the local tooling uses this module; Lambda code never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from flowdeploy.local.iam_requests import LOCAL_WEBSOCKET_API_ID


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub …) as their long forms."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@cache
def _parse(path: Path, _mtime: int) -> dict[str, Any]:
    """The template, parsed once per version of the file (tests build many stacks)."""
    parsed: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506
    return parsed


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # API Gateway syntax: /flow/{flow_id}, or $default
    function: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this route serves the request, else None."""
        if self.path == "$default":
            return {}
        if self.method not in {"ANY", method}:
            return None
        pattern = re.sub(
            r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)
        )
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal segments over parameters, a named method over ANY on
        the same path, and $default last."""
        if self.path == "$default":
            return (-1, 0, 0)
        segments = self.path.strip("/").split("/")
        literal = sum(not s.startswith("{") for s in segments)
        return (literal, len(segments), self.method != "ANY")


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping: the queue's logical id, its batch size, and at most how
    many invocations it runs at once (ScalingConfig.MaximumConcurrency; None: no cap)."""

    queue: str
    batch: int
    max_concurrency: int | None = None


@dataclass
class FunctionSpec:
    name: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any] = field(default_factory=dict)
    sqs_queues: list[QueueSource] = field(default_factory=list)
    schedules: list[float] = field(default_factory=list)  # seconds between scheduled events
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class WebSocketApiSpec:
    """A WebSocket API: its stage, what selects a route, and each route's function."""

    name: str  # logical id
    api_id: str  # what the local stack calls it (API Gateway would generate one)
    stage: str
    selection_key: str  # `method` of $request.body.method
    routes: dict[str, str]  # route key → function logical id


class Template:
    """The parts of template.yaml the local stack needs.

    `parameters` override the template's defaults, as `sam deploy --parameter-overrides`
    does; resources whose Condition is false do not exist, as in AWS.
    """

    def __init__(self, path: Path, parameters: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.root = path.parent
        self.doc: dict[str, Any] = _parse(path.resolve(), path.stat().st_mtime_ns)
        self.overrides = dict(parameters or {})
        unknown = set(self.overrides) - set(self.doc.get("Parameters", {}))
        if unknown:
            raise ValueError(f"template.yaml has no parameter {', '.join(sorted(unknown))}")
        self.mappings: dict[str, Any] = self.doc.get("Mappings", {})
        self.conditions = self._evaluate_conditions()
        self.resources: dict[str, dict[str, Any]] = {
            name: resource
            for name, resource in self.doc["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def parameter_defaults(self) -> dict[str, Any]:
        return {k: v.get("Default") for k, v in self.doc.get("Parameters", {}).items()}

    def parameter_values(self) -> dict[str, Any]:
        return {**self.parameter_defaults(), **self.overrides}

    def _evaluate_conditions(self) -> dict[str, bool]:
        values = self.parameter_values()
        declared: dict[str, Any] = self.doc.get("Conditions", {})
        evaluated: dict[str, bool] = {}

        def truth(expression: Any) -> bool:
            ((function, args),) = expression.items()
            if function == "Condition":
                return condition(args)
            if function == "Fn::Equals":
                left, right = (str(resolve(a, values, mappings=self.mappings)) for a in args)
                return left == right
            if function == "Fn::Not":
                return not truth(args[0])
            if function == "Fn::And":
                return all(truth(a) for a in args)
            if function == "Fn::Or":
                return any(truth(a) for a in args)
            raise ValueError(f"unsupported condition function {function}")

        def condition(name: str) -> bool:
            if name not in evaluated:
                evaluated[name] = truth(declared[name])
            return evaluated[name]

        for name in declared:
            condition(name)
        return evaluated

    def resolve(self, value: Any, names: Mapping[str, Any]) -> Any:
        """`value` with its intrinsic functions resolved against `names`, the template's
        parameters, conditions and mappings."""
        return resolve(value, {**self.parameter_values(), **names}, self.conditions, self.mappings)

    def tables(self) -> dict[str, dict[str, Any]]:
        """create_table arguments per table logical id (the logical id is the local name)."""
        tables = {}
        for name, resource in self.of_type("AWS::DynamoDB::Table").items():
            props = resource["Properties"]
            args: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            tables[name] = args
        return tables

    def queues(self) -> dict[str, dict[str, Any]]:
        """Queue properties per logical id, dead-letter queues first."""
        queues = self.of_type("AWS::SQS::Queue")
        return dict(
            sorted(
                ((k, v.get("Properties", {})) for k, v in queues.items()),
                key=lambda item: "RedrivePolicy" in item[1],
            )
        )

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        specs = {}
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            props = {**globals_, **resource["Properties"]}
            env = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            reserved = self.resolve(props.get("ReservedConcurrentExecutions"), {})
            spec = FunctionSpec(
                name=name,
                code_uri=self.root / props["CodeUri"],
                handler=props["Handler"],
                timeout=int(self.resolve(props.get("Timeout", 3), {})),
                memory=int(self.resolve(props.get("MemorySize", 128), {})),
                environment=env,
                reserved_concurrency=None if reserved in (None, NO_VALUE) else int(reserved),
            )
            for event in props.get("Events", {}).values():
                if event["Type"] == "SQS":
                    spec.sqs_queues.append(self._queue_source(event["Properties"], "Queue"))
                elif event["Type"] == "Schedule":
                    spec.schedules.append(rate_seconds(event["Properties"]["Schedule"]))
            specs[name] = spec
        for mapping in self.of_type("AWS::Lambda::EventSourceMapping").values():
            props = mapping["Properties"]
            source = props["EventSourceArn"].get("Fn::GetAtt", [""])[0]
            if source in self.of_type("AWS::SQS::Queue"):
                function = props["FunctionName"]["Ref"]
                specs[function].sqs_queues.append(self._queue_source(props, "EventSourceArn"))
        return specs

    def _queue_source(self, props: Mapping[str, Any], queue_key: str) -> QueueSource:
        scaling = self.resolve(props.get("ScalingConfig"), {}) or {}
        maximum = self.resolve(scaling.get("MaximumConcurrency"), {}) if scaling else None
        return QueueSource(
            queue=props[queue_key]["Fn::GetAtt"][0],
            batch=int(self.resolve(props.get("BatchSize", 10), {})),
            max_concurrency=None if maximum in (None, NO_VALUE) else int(maximum),
        )

    def routes(self) -> list[Route]:
        """Every HttpApi route, most specific first, as API Gateway matches them."""
        routes = []
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    props = event["Properties"]
                    routes.append(Route(props["Method"].upper(), props["Path"], name))
        return sorted(routes, key=lambda r: r.specificity, reverse=True)

    def websocket_api(self) -> WebSocketApiSpec | None:
        """The template's WebSocket API (there is at most one), its routes resolved through
        their integrations to the functions they invoke."""
        apis = {
            name: resource["Properties"]
            for name, resource in self.of_type("AWS::ApiGatewayV2::Api").items()
            if resource["Properties"].get("ProtocolType") == "WEBSOCKET"
        }
        if not apis:
            return None
        ((name, props),) = apis.items()
        expression = str(props["RouteSelectionExpression"])
        found = re.fullmatch(r"\$request\.body\.([A-Za-z_][A-Za-z0-9_]*)", expression)
        if found is None:
            raise ValueError(f"the local stack routes on $request.body.<field>, not {expression}")
        integrations = {}
        for integration, resource in self.of_type("AWS::ApiGatewayV2::Integration").items():
            uri = str(resource["Properties"]["IntegrationUri"].get("Fn::Sub", ""))
            function = re.search(r"\$\{([A-Za-z0-9]+)\.Arn\}", uri)
            if function is not None:
                integrations[integration] = function.group(1)
        routes = {}
        for resource in self.of_type("AWS::ApiGatewayV2::Route").values():
            route = resource["Properties"]
            if route["ApiId"] != {"Ref": name}:
                continue
            target = re.fullmatch(r"integrations/\$\{(\w+)\}", str(route["Target"]["Fn::Sub"]))
            if target is None:
                raise ValueError(f"route {route['RouteKey']}: Target must be integrations/${{…}}")
            routes[str(route["RouteKey"])] = integrations[target.group(1)]
        stages = [
            str(stage["Properties"]["StageName"])
            for stage in self.of_type("AWS::ApiGatewayV2::Stage").values()
            if stage["Properties"]["ApiId"] == {"Ref": name}
        ]
        return WebSocketApiSpec(name, LOCAL_WEBSOCKET_API_ID, stages[0], found.group(1), routes)

    def route_throttling(self) -> dict[str, tuple[float, int]]:
        """Route key → (rate per second, burst): the HTTP API's DefaultRouteSettings for
        every route, its RouteSettings for the routes they name."""
        limits: dict[str, tuple[float, int]] = {}
        for resource in self.of_type("AWS::Serverless::HttpApi").values():
            props = resource.get("Properties", {})
            defaults = self.resolve(props.get("DefaultRouteSettings", {}), {})
            default = _limits(defaults)
            if default:
                limits.update({route.route_key: default for route in self.routes()})
            for key, settings in self.resolve(props.get("RouteSettings", {}), {}).items():
                specific = _limits({**defaults, **settings})
                if specific:
                    limits[key] = specific
        return limits

    def cors(self) -> dict[str, Any]:
        for resource in self.of_type("AWS::Serverless::HttpApi").values():
            return dict(resource.get("Properties", {}).get("CorsConfiguration", {}))
        return {}


def _limits(settings: Mapping[str, Any]) -> tuple[float, int] | None:
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None or burst is None:
        return None
    return float(rate), int(burst)


_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between events of an EventBridge `rate(N unit)` schedule."""
    found = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression.strip())
    if found is None:
        raise ValueError(f"the local stack runs rate() schedules only, not {expression!r}")
    return int(found.group(1)) * _RATE_UNITS[found.group(2)]


NO_VALUE = "AWS::NoValue"  # what `!Ref AWS::NoValue` resolves to: "leave the property out"


def resolve(
    value: Any,
    names: Mapping[str, Any],
    conditions: Mapping[str, bool] | None = None,
    mappings: Mapping[str, Any] | None = None,
) -> Any:
    """Resolve Ref / GetAtt / Sub / If / FindInMap against `names` (logical id, parameter or
    "Id.Attr" → local value), in nested dicts and lists too."""

    def again(inner: Any) -> Any:
        return resolve(inner, names, conditions, mappings)

    if isinstance(value, list):
        return [again(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and (intrinsic := next(iter(value))) in _INTRINSICS:
        return _INTRINSICS[intrinsic](
            value[intrinsic], names, conditions or {}, mappings or {}, again
        )
    return {k: resolved for k, v in value.items() if (resolved := again(v)) != NO_VALUE}


def _if(arg: Any, _: Any, conditions: Mapping[str, bool], __: Any, again: Any) -> Any:
    name, when_true, when_false = arg
    return again(when_true if conditions[name] else when_false)


def _sub(arg: Any, names: Mapping[str, Any], *_: Any) -> Any:
    if not isinstance(arg, str):
        raise ValueError(f"the local stack resolves !Sub of a string only, not {arg!r}")
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(names[m.group(1)]), arg)


def _find_in_map(arg: Any, _: Any, __: Any, mappings: Mapping[str, Any], again: Any) -> Any:
    table, first, second = (again(a) for a in arg)
    return mappings[table][str(first)][str(second)]


_INTRINSICS: dict[str, Any] = {
    "Fn::If": _if,
    "Ref": lambda arg, names, *_: NO_VALUE if arg == NO_VALUE else names[arg],
    "Fn::GetAtt": lambda arg, names, *_: names[f"{arg[0]}.{arg[1]}"],
    "Fn::Sub": _sub,
    "Fn::FindInMap": _find_in_map,
}

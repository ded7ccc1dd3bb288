"""A wrong method on a known path is a 405 naming the allowed ones; the start route says
which query parameters it does not know, and refuses two ways of naming a deployment.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy import http
from flowdeploy.local.template import Template
from tests.conftest import ROOT, new_user
from tests.unit.api import Api, count_items

TEMPLATE = Template(ROOT / "template.yaml")
DEFAULT_FUNCTION = next(r.function for r in TEMPLATE.routes() if r.path == "$default")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/deployment/start", "POST"),
        ("DELETE", "/flow/deploy/2", "POST"),
        ("PATCH", "/flow/1", "DELETE, GET, PUT"),
        ("POST", "/deployment/0194e5ac-9103-7c52-971e-f71f83c5de2e", "DELETE, GET, PATCH"),
        ("DELETE", "/apikey", "GET, POST"),
        ("GET", "/flow_run/x/stop", "POST"),
        ("POST", "/openapi.json", "GET"),
        ("PUT", "/docs", "GET"),
        ("DELETE", "/deployment/read", "GET, POST"),
        ("DELETE", "/signature/submit", "POST"),
    ],
)
def test_a_wrong_method_on_a_known_path_is_a_405_with_allow(
    api: Api, method: str, path: str, allowed: str
) -> None:
    reply = api.call(method, path, user=new_user())
    assert reply.status == 405, reply.body
    assert reply.headers["allow"] == allowed
    assert reply.body == {"error": f"{method} is not allowed on {path}; allowed: {allowed}"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/actions.json", "GET, OPTIONS"), ("DELETE", "/action/x", "GET, OPTIONS, POST")],
)
def test_solana_actions_paths_answer_405_in_their_own_error_shape(
    api: Api, method: str, path: str, allowed: str
) -> None:
    reply = api.call(method, path)
    assert (reply.status, reply.headers["allow"]) == (405, allowed)
    assert reply.body == {"message": f"{method} is not allowed on {path}; allowed: {allowed}"}


def test_a_wrong_method_changes_nothing(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    assert api.call("DELETE", f"/flow/deploy/{flow_id}", user=owner).status == 405
    assert count_items("DeploymentsTable") == 0


def test_an_unknown_path_is_still_a_404(api: Api) -> None:
    reply = api.call("GET", "/no/such/thing", user=new_user())
    assert reply.status == 404
    assert reply.body == {"error": "no route for GET /no/such/thing"}
    assert "allow" not in reply.headers


def test_a_literal_path_wins_over_a_parameter_of_the_same_resolver() -> None:
    """`DELETE /deployment/read` must not reach `DELETE /deployment/{deployment_id}` when
    `/deployment/read` is a route of its own: the mechanism reads the resolver's routes."""
    app = http.make_app()

    @app.get("/deployment/read")
    def read() -> dict[str, str]:
        return {"route": "read"}

    @app.post("/deployment/read")
    def read_post() -> dict[str, str]:
        return {"route": "read"}

    @app.delete("/deployment/<deployment_id>")
    def delete(deployment_id: str) -> dict[str, str]:
        return {"deleted": deployment_id}

    def call(method: str, path: str) -> dict[str, Any]:
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {},
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
            "isBase64Encoded": False,
        }
        return app.resolve(event, None)  # type: ignore[arg-type]

    refused = call("DELETE", "/deployment/read")
    assert refused["statusCode"] == 405
    assert refused["headers"]["Allow"] == "GET, POST"
    assert call("DELETE", "/deployment/abc")["statusCode"] == 200
    assert call("GET", "/deployment/read")["statusCode"] == 200


def test_every_path_of_another_function_routes_its_other_methods_to_it() -> None:
    """API Gateway sends a request to a route only for the methods it names: without an ANY
    route, `GET /deployment/start` would reach `GET /deployment/{deployment_id}` and
    `DELETE /flow/deploy/2` the $default route, neither of which knows the path."""
    routes = [r for r in TEMPLATE.routes() if r.path != "$default"]
    guards = {(r.path, r.function) for r in routes if r.method == "ANY"}
    for route in routes:
        if route.function != DEFAULT_FUNCTION:
            assert (route.path, route.function) in guards, route.route_key


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("flow={flow}&tagg=v1", "unknown query parameter: tagg (this route takes id, flow, tag)"),
        ("flow={flow}&a=1&b=2", "unknown query parameters: a, b (this route takes id, flow, tag)"),
        (
            "id=0194e5ac-9103-7c52-971e-f71f83c5de2e&flow={flow}",
            "name the deployment one way: ?id= or ?flow=[&tag=], not both",
        ),
        ("id=0194e5ac-9103-7c52-971e-f71f83c5de2e&tag=v1", "tag goes with flow, not with id"),
        ("tag=v1", "tag goes with flow, not with id"),
    ],
)
def test_a_start_query_the_route_cannot_read_exactly_is_a_400(
    api: Api, deployed: tuple[str, int, str], query: str, message: str
) -> None:
    owner, flow_id, _ = deployed
    reply = api.call("POST", f"/deployment/start?{query.format(flow=flow_id)}", user=owner)
    assert reply.status == 400
    assert reply.body == {"error": message}
    assert count_items("FlowRunsTable") == 0

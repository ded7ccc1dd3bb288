"""DocsFunction: `GET /openapi.json` and `GET /docs` (Swagger UI) for every route of the API.

Its code is the whole functions/ folder, so it can load each function's resolver and
merge what Powertools generates from their routes into one document, once per
execution environment.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import http
from flowdeploy.errors import BadRequest
from flowdeploy.http import openapi
from flowdeploy.observability import logger

FUNCTIONS = Path(__file__).resolve().parents[1]
SWAGGER_UI = Path(swagger_ui.__file__).parent  # served inline: the page needs no CDN

app = http.make_app()


@cache
def document_json() -> str:
    resolvers = [app, *openapi.load_resolvers(FUNCTIONS, besides=Path(__file__))]
    return json.dumps(openapi.document(resolvers), indent=2)


@app.get(
    "/openapi.json",
    **openapi.route(
        "This document: every route, body, response and error",
        tag="documentation",
        ok=dict[str, Any],
        auth=openapi.PUBLIC,
    ),
)
def openapi_json() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, document_json())


@app.get(
    "/",
    **openapi.route(
        "This API's index: links to its documentation, and every route",
        tag="documentation",
        ok=openapi.Index,
        auth=openapi.PUBLIC,
    ),
)
def index() -> dict[str, Any]:
    event = app.current_event
    scheme = event.headers.get("x-forwarded-proto", "http")
    base = f"{scheme}://{event.headers.get('host', event.request_context.domain_name)}"
    paths: dict[str, dict[str, Any]] = json.loads(document_json())["paths"]
    return {
        "name": openapi.TITLE,
        "docs": f"{base}/docs",
        "openapi": f"{base}/openapi.json",
        "routes": sorted(
            f"{method.upper()} {path}" for path, item in paths.items() for method in item
        ),
    }


@app.get(
    "/docs",
    **openapi.route(
        "Interactive documentation (Swagger UI) of this document",
        tag="documentation",
        ok=str,
        content_type="text/html",
        auth=openapi.PUBLIC,
        description="`?format=json`, the address the page shows for its document, answers it.",
        errors=(400,),
    ),
)
def docs() -> Response[str]:
    # The page shows its document's address as /docs?format=json, as Powertools serves it.
    # Other parameters (a browser's, a tracker's) do not matter to a page: no 400 for them.
    view = (app.current_event.query_string_parameters or {}).get("format")
    if view == "json":
        return openapi_json()
    if view is not None:
        raise BadRequest(f"format must be json (the OpenAPI document), got {view!r}")
    page = generate_swagger_html(
        spec=document_json().replace("</", "<\\/"),
        swagger_js=(SWAGGER_UI / "swagger-ui-bundle.min.js").read_text(),
        swagger_css=(SWAGGER_UI / "swagger-ui.min.css").read_text(),
        swagger_base_url="",
        oauth2_config=None,
    )
    return Response(200, "text/html; charset=utf-8", page)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

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
    "/docs",
    **openapi.route(
        "Interactive documentation (Swagger UI) of this document",
        tag="documentation",
        ok=str,
        content_type="text/html",
        auth=openapi.PUBLIC,
    ),
)
def docs() -> Response[str]:
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

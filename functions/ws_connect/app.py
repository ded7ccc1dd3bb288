"""WebSocketConnectionFunction: routes $connect (remember the connection) and $disconnect
(forget it and its subscriptions). Credentials come later, in an Authenticate request."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy.live import sessions
from flowdeploy.observability import logger


@logger.inject_lambda_context
@event_source(data_class=APIGatewayWebSocketEvent)
def lambda_handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    request = event.request_context
    if request.event_type == "CONNECT":
        sessions.connect(request.connection_id, request.connected_at / 1000)
    else:
        sessions.disconnect(request.connection_id)
    return {"statusCode": 200}

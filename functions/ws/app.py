"""WebSocketFunction: the requests of upstream's WebSocket protocol (routes Authenticate,
SubscribeFlowRunEvents, SubscribeSignatureRequests and $default), answered by posting to the
connection through API Gateway's management API."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy.live import sessions
from flowdeploy.live.outbox import outbox
from flowdeploy.observability import logger

# Kept back from the function's remaining time to close a connection whose replay ran late.
MARGIN_SECONDS = 2.0


@logger.inject_lambda_context
@event_source(data_class=APIGatewayWebSocketEvent)
def lambda_handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    request = event.request_context
    connection_id = request.connection_id
    sessions.answer(
        event.decoded_body,
        connection_id,
        request.connected_at / 1000,
        send=lambda text: outbox().post(connection_id, text),
        close=lambda: outbox().close(connection_id),
        deadline=time.monotonic() + context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS,
    )
    return {"statusCode": 200}

"""SweeperFunction: on a schedule, fails runs left queued or running past their time."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy.observability import count, logger, metrics
from flowdeploy.sweeper import sweep


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    swept = sweep()
    for status, run_ids in swept.items():
        for run_id in run_ids:
            logger.warning("overdue run failed", extra={"flow_run_id": run_id, "was": status})
            count(f"Swept{status.capitalize()}Run")
    return {"failed": swept}

"""Powertools logger and metrics shared by every function (one of each per process)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()


def count(name: str) -> None:
    """Add 1 to a CloudWatch metric (embedded metric format, flushed by @log_metrics)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)

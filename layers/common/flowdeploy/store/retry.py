"""How long a request keeps retrying writes that lost a race: a time budget, not a count.

A fixed number of retries is either too few under real contention (the request fails
although waiting a little longer would have worked) or unbounded in time. A budget of
seconds (`CONFLICT_RETRY_SECONDS`, default 10, well inside API Gateway's 29 s) with
capped exponential backoff and full jitter (a random wait between 0 and the cap, so racing
requests spread out) does neither; past it the caller gets a 409 with Retry-After.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import flowdeploy.settings


class RetryBudget:
    """Retries of one request: `wait()` sleeps before the next attempt, False when the budget
    cannot afford another."""

    BASE_DELAY = 0.025
    MAX_DELAY = 1.0

    def __init__(
        self,
        seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if seconds is None:
            seconds = flowdeploy.settings.settings().conflict_retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._deadline = clock() + seconds
        self.attempts = 0
        self._spent = False

    def wait(self) -> bool:
        if self._spent:
            return False
        cap = min(self.MAX_DELAY, self.BASE_DELAY * 2**self.attempts)
        delay = random.uniform(0, cap)  # noqa: S311 - jitter, not a secret
        if self._clock() + delay >= self._deadline:
            self._spent = True
            return False
        self._sleep(delay)
        self.attempts += 1
        return True

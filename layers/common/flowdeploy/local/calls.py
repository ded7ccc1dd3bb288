"""Count AWS calls, with botocore's event hooks: the round-trip tests and `make bench` use it.

Every botocore session registers `botocore.handlers.BUILTIN_HANDLERS` when it is created,
so one `before-call` hook added there sees every API call of every client made later,
whichever session made it (boto3's default one, pynamodb's per-thread ones). A call is
counted once however often botocore retries it. `install()` must therefore run before
the first client exists; counting only happens inside `counting()`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore import handlers

_EVENT = "before-call"
_active: list[Counter[str]] = []
_lock = threading.Lock()


def _count(model: Any, **_: Any) -> None:
    if _active:
        name = f"{model.service_model.service_name}:{model.name}"
        with _lock:
            for counter in _active:
                counter[name] += 1


def install() -> None:
    """Hook every botocore session created from now on (idempotent)."""
    if (_EVENT, _count) not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append((_EVENT, _count))


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """AWS calls made inside the block, as `{"dynamodb:GetItem": 1, "sqs:SendMessage": 1}`."""
    install()
    counter: Counter[str] = Counter()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)

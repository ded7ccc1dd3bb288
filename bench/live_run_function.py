"""RunFunction as the stream design's prototype runs it (`bench/live_stack.py`): the real
handler, with no live delivery and its records written every BENCH_FLUSH_SECONDS. Loaded as
RunFunction's handler in its own execution environments; never part of the product."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flowdeploy import runner
from flowdeploy.live.run_stream import RunStream
from flowdeploy.local.environments import load_handler


async def _no_live_delivery(self: RunStream, count: Any, *, final: bool = False) -> None:
    return None


RunStream.watchers = _no_live_delivery  # type: ignore[method-assign]
runner.FLUSH_SECONDS = float(os.environ["BENCH_FLUSH_SECONDS"])
handler = load_handler(
    Path(os.environ["BENCH_RUN_CODE"]), os.environ["BENCH_RUN_HANDLER"], "RunFunction"
)

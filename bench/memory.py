"""Peak memory of RunFunction running a 1,000-node flow, to size its MemorySize.

Fresh processes: one only imports RunFunction's handler (its footprint at init, what
Lambda starts from); the others run one flow, then a batch of 10 at once, through the
handler against moto in-process, and report their peak RSS over their RSS just before the
run. Peaks are VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across
fork and exec, so a child of a large bench process would report the parent's size. moto
keeping the records in the same process makes the run's share an upper bound.
"""

from __future__ import annotations

import json
import sys

from bench.cold_start import lambda_environment
from bench.report import ROOT, Row, print_rows, python

NODES = 1_000

STATUS = """
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
"""

INIT = (
    STATUS
    + """
import json, sys
sys.path.insert(0, "functions/run")
import app
print(json.dumps({"peak_kb": status_kb("VmHWM")}))
"""
)

RUN = (
    STATUS
    + """
import json, sys
from bench.inprocess import chain, local_api

nodes_per_run, runs = int(sys.argv[1]), int(sys.argv[2])
with local_api() as api:
    from flowdeploy.store import queue
    from tests.conftest import new_user
    from tests.unit.api import sqs_event

    user = new_user()
    nodes, edges = chain(nodes_per_run)
    deployment = api.deploy(user, api.create_flow(user, nodes=nodes, edges=edges))
    bodies = []
    for _ in range(runs):
        reply = api.call("POST", f"/deployment/start?id={deployment}", user=user)
        bodies.append(queue.message_body(reply.body["flow_run_id"]))
    api.functions.invoke("RunFunction", sqs_event(queue.message_body("warm-up")))
    before = status_kb("VmRSS")
    result = api.functions.invoke("RunFunction", sqs_event(*bodies))
    assert result == {"batchItemFailures": []}, result
    peak = status_kb("VmHWM")
print(json.dumps({"before_kb": before, "peak_kb": peak}))
"""
)
MEMORY_SIZE = 1024
BATCH = 10  # template.yaml: RunFunction's SQS BatchSize


def measure() -> list[Row]:
    init = json.loads(python("-c", INIT, cwd=ROOT, env=lambda_environment()))
    one = json.loads(python("-c", RUN, str(NODES), "1", cwd=ROOT))
    batch = json.loads(python("-c", RUN, str(NODES), str(BATCH), cwd=ROOT))
    init_mb = init["peak_kb"] / 1024
    one_mb = (one["peak_kb"] - one["before_kb"]) / 1024
    batch_mb = (batch["peak_kb"] - batch["before_kb"]) / 1024
    return [
        Row("memory", "RunFunction after init (imports)", f"{init_mb:.0f} MB"),
        Row(
            "memory",
            f"RunFunction: one {NODES:,}-node run adds (peak)",
            f"{one_mb:.0f} MB",
            note=f"process peak {one['peak_kb'] / 1024:.0f} MB with moto in it",
        ),
        Row(
            "memory",
            f"RunFunction: init + a batch of {BATCH} such runs at once",
            f"{init_mb + batch_mb:.0f} MB",
            f"< MemorySize {MEMORY_SIZE} MB / 2",
            init_mb + batch_mb < MEMORY_SIZE / 2,
            f"SQS BatchSize {BATCH}: a batch's runs execute concurrently in one environment",
        ),
    ]


if __name__ == "__main__":
    sys.exit(print_rows(measure()))

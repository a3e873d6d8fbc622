"""Page weight and time to an interactive console from a cold cache, in
Chromium (bench/page.mjs), against the release binary with the demo data.

Run through scripts/bench.sh (BENCH_ONLY=page). Prints figures; it passes or
fails nothing.
"""

import os
import subprocess

from harness import RUNS, Bench, Console

bench = Bench("page")
bench.run("demo", "seed", "--scale", "1")
console = Console(bench)
# A few backups, so the console lists something.
for _ in range(3):
    console.follow(console.call("POST", "/api/admin/backup/create")["job"])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["node", os.path.join(root, "bench", "page.mjs")], check=True,
               env=dict(os.environ, BENCH_BASE=console.base, BENCH_USER="bench",
                        BENCH_PASSWORD=console.password, BENCH_RUNS=str(max(RUNS, 5))))
console.stop()
subprocess.run(["rm", "-rf", bench.work])

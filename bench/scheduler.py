"""The scheduler's cost: what an idle server spends with 0 and with 10
schedules (CPU seconds and control-database transactions per minute), and
how long after a due time pg_dump starts. Prints figures; asserts nothing.

Run through scripts/bench.sh (BENCH_ONLY=scheduler): it builds the release
binary, starts a throwaway cluster and sets DATABASE_URL and LMS_ADMIN_BIN.
BENCH_IDLE_SECONDS (60): how long each idle window is watched.
BENCH_DUE_RUNS (3): due times timed (one a minute).
"""

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
DUE_RUNS = int(os.environ.get("BENCH_DUE_RUNS", "3"))
PG_DUMP = os.environ["BENCH_PG_DUMP"]

work = tempfile.mkdtemp(prefix="lms-sched-bench-")
backup_dir = os.path.join(work, "backups")
os.makedirs(backup_dir, mode=0o750)
# pg_dump behind a wrapper that notes when it starts dumping.
tools = os.path.join(work, "bin")
os.makedirs(tools)
starts = os.path.join(work, "pg_dump.starts")
with open(os.path.join(tools, "pg_dump"), "w") as f:
    f.write(f"""#!/bin/sh
if [ "$1" != --version ]; then date +%s.%N >> '{starts}'; fi
exec '{PG_DUMP}' "$@"
""")
os.chmod(os.path.join(tools, "pg_dump"), 0o755)
os.symlink(os.path.join(os.path.dirname(PG_DUMP), "pg_restore"), os.path.join(tools, "pg_restore"))

env = dict(os.environ, BACKUP_DIR=backup_dir, BACKUP_RATE_LIMIT="0", MAX_BACKUPS_TO_KEEP="1000",
           POSTGRES_BIN_PATH=tools, RUST_LOG=os.environ.get("BENCH_LOG", "warn"))
url = urllib.parse.urlparse(DB)
db_name = url.path.lstrip("/")
pg_env = dict(os.environ, PGHOST=url.hostname, PGPORT=str(url.port), PGUSER=url.username,
              PGPASSWORD=urllib.parse.unquote(url.password or ""))
TICK = os.sysconf("SC_CLK_TCK")


def run(*args):
    return subprocess.run([BIN, *args], env=env, text=True, check=True, capture_output=True).stdout


def control_sql(sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", db_name + "_control",
                           "-c", sql], env=pg_env, text=True, check=True, capture_output=True).stdout.strip()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def transactions():
    return int(control_sql(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"))


def serve():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env, cwd=work,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "a"))
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the server exited at start-up; see its log")
            time.sleep(0.1)
    raise SystemExit("the server did not come up")


def idle_window(label):
    server = serve()
    time.sleep(5)  # past start-up work (migrations, file checks)
    cpu0, tx0, t0 = cpu_seconds(server.pid), transactions(), time.monotonic()
    time.sleep(IDLE_SECONDS)
    cpu1, tx1, t1 = cpu_seconds(server.pid), transactions(), time.monotonic()
    server.terminate()
    server.wait()
    minutes = (t1 - t0) / 60
    # The statistics collector's own reads are transactions too; subtract ours (2 per window).
    tx = (tx1 - tx0 - 2) / minutes
    cpu = (cpu1 - cpu0) / minutes
    print(f"  {label:<16} CPU {cpu * 1000:7.1f} ms/min ({cpu / 60 * 100:.3f} % of a core)   "
          f"control-db transactions {tx:6.1f}/min")
    return cpu, tx


run("migrate")
run("demo", "seed", "--scale", "1")
print(f"Scheduler idle cost over {IDLE_SECONDS:.0f} s windows (release build, RUST_LOG=warn):")
base = idle_window("no schedule")
zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
         "Europe/London", "America/Los_Angeles", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Auckland"]
for i, zone in enumerate(zones):
    # Daily at 03:00 in each zone: none comes due during the window.
    run("schedule", "add", "--name", f"bench-{i + 1:02}", "--cron", "0 3 * * *", "--timezone", zone)
ten = idle_window("10 schedules")
for i in range(len(zones)):
    run("schedule", "remove", f"bench-{i + 1:02}", "--yes")
# The first window of a fresh database can carry one-off work (statistics
# and sessions set up on first use); a second baseline after the schedules
# are gone is compared too.
again = idle_window("no schedule, again")
for label, b in (("first", base), ("second", again)):
    print(f"  against the {label} baseline the 10 schedules add {(ten[0] - b[0]) * 1000:+.1f} ms CPU/min and "
          f"{ten[1] - b[1]:+.1f} transactions/min")
run("schedule", "add", "--name", "bench-minutely", "--cron", "* * * * *", "--timezone", "UTC")
server = serve()
print(f"\nFrom due time to pg_dump start ({DUE_RUNS} due times, a schedule due every minute):")
delays = []
deadline = time.monotonic() + 60 * (DUE_RUNS + 2)
while len(delays) < DUE_RUNS and time.monotonic() < deadline:
    time.sleep(1)
    rows = control_sql("SELECT extract(epoch FROM due_at) FROM schedule_runs r JOIN jobs j ON j.id = r.job_id "
                       "WHERE j.status = 'succeeded' ORDER BY due_at")
    due = [float(x) for x in rows.split()] if rows else []
    began = [float(x) for x in open(starts).read().split()] if os.path.exists(starts) else []
    delays = []
    for d in due:
        after = [b for b in began if b >= d]
        if after:
            delays.append(min(after) - d)
server.terminate()
server.wait()
for d in delays:
    print(f"  {d * 1000:7.1f} ms")
if delays:
    print(f"  median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms")
shutil.rmtree(work, ignore_errors=True)

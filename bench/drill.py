"""Restore drill benchmark: the drill job (restore into a scratch database,
fingerprint comparison, migrations, smoke queries, drop) against a bare
`pg_restore` of the same archive into an empty database with the same number
of parallel jobs, at two database sizes; and the recovery time the product
reports for each.

Run through scripts/bench.sh (BENCH_ONLY=drill), which builds the release
binary and provides a throwaway PostgreSQL. Prints figures and ratios; it
passes or fails nothing.
"""

import http.cookiejar
import json
import os
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
PG_RESTORE = os.environ["BENCH_PG_RESTORE"]
SCALES = [int(s) for s in os.environ.get("BENCH_DRILL_SCALES", "10,40").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
JOBS = max(1, min(4, os.cpu_count() or 1))

work = tempfile.mkdtemp(prefix="lms-bench-drill-")
backups = os.path.join(work, "backups")
os.makedirs(backups, mode=0o750)
env = dict(os.environ, BACKUP_DIR=backups, BACKUP_RATE_LIMIT="0", MAX_BACKUP_SIZE="8GiB",
           MAX_BACKUPS_TO_KEEP="2", DRILL_INTERVAL_HOURS="0", RUST_LOG=os.environ.get("BENCH_LOG", "warn"))
url = urllib.parse.urlparse(DB)
pg_env = dict(os.environ, PGHOST=url.hostname, PGPORT=str(url.port), PGUSER=url.username,
              PGPASSWORD=urllib.parse.unquote(url.password or ""), PGDATABASE=url.path.lstrip("/"))


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], env=env, input=stdin, text=True, check=True,
                          capture_output=True).stdout.strip()


def psql(sql, db=None):
    args = ["psql", "-X", "-q", "-t", "-A", "-c", sql]
    if db:
        args[1:1] = ["-d", db]
    return subprocess.run(args, env=pg_env, text=True, check=True, capture_output=True).stdout.strip()


def control(sql):
    return psql(sql, url.path.lstrip("/") + "_control")


def mb(n):
    return f"{n / 1048576:.1f} MB"


def bare_restore(archive):
    name = "bench_bare_drill"
    psql(f"DROP DATABASE IF EXISTS {name}")
    psql(f"CREATE DATABASE {name}")
    start = time.monotonic()
    subprocess.run([PG_RESTORE, "--no-owner", "--no-acl", "--exit-on-error", f"--jobs={JOBS}",
                    "-d", name, archive], env=pg_env, check=True)
    elapsed = time.monotonic() - start
    psql(f"DROP DATABASE {name}")
    return elapsed


class Console:
    """A signed-in administrator of a server on the loopback, who starts
    drills and follows them."""

    def __init__(self):
        password = secrets.token_urlsafe(18)
        run("user", "create", "--username", "bench", "--role", "admin", "--password-stdin", stdin=password + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # With BENCH_LOG set, the server's log is kept (its drills log each step's time).
        log = open(os.path.join(work, "server.log"), "ab") if "BENCH_LOG" in os.environ else subprocess.DEVNULL
        self.server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                                       stdout=log, stderr=log, cwd=work)
        if log is not subprocess.DEVNULL:
            print(f"server log: {log.name}", flush=True)
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        while True:
            try:
                self.call("GET", "/api/auth/me")
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
                continue
            break
        self.call("POST", "/api/auth/login", {"username": "bench", "password": password})

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
        with self.opener.open(req) as res:
            return json.loads(res.read() or b"null")

    def drill(self, backup_id):
        job = self.call("POST", "/api/admin/backup/drill", {"backup_id": int(backup_id)})
        while job["status"] == "running":
            # Seldom, so the polling adds no load to what is measured: the
            # time is the job's own, from its creation (during the request)
            # to its end, as the control database recorded them.
            time.sleep(0.2)
            job = self.call("GET", f"/api/admin/backup/jobs/{job['id']}")
        assert job["status"] == "succeeded", job
        elapsed = float(control(
            f"SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = '{job['id']}'"))
        reported = int(control(
            f"SELECT duration_ms FROM restore_drills WHERE job_id = '{job['id']}'"))
        return elapsed, reported / 1000

    def stop(self):
        self.server.terminate()
        self.server.wait()


print(f"pg_restore --jobs={JOBS}; {RUNS} runs each, alternating order", flush=True)
summary = []
for scale in SCALES:
    psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    run("migrate")
    run("demo", "seed", "--scale", str(scale))
    db_bytes = int(psql("SELECT pg_database_size(current_database())"))
    run("backup", "create", "--notes", f"drill bench scale {scale}")
    console = Console()
    backup_id, filename, size = control(
        "SELECT id || '|' || filename || '|' || size_bytes FROM backup_history "
        "WHERE status = 'completed' ORDER BY id DESC LIMIT 1").split("|")
    archive = os.path.join(backups, filename)
    bare, ours, reported = [], [], []
    for i in range(RUNS):
        for side in (("bare", "drill") if i % 2 == 0 else ("drill", "bare")):
            if side == "bare":
                bare.append(bare_restore(archive))
            else:
                t, r = console.drill(backup_id)
                ours.append(t)
                reported.append(r)
        print(f"scale {scale} run {i + 1}: bare pg_restore {bare[-1]:6.2f} s, drill job {ours[-1]:6.2f} s "
              f"(it reports {reported[-1]:.2f} s)", flush=True)
    console.stop()
    mb_, mo, mr = statistics.median(bare), statistics.median(ours), statistics.median(reported)
    summary.append((scale, db_bytes, int(size), mb_, mo, mr))

print()
print("| database | archive | bare pg_restore | drill job (created to ended) | recovery time it reports | drill / bare |")
print("|---|---|---|---|---|---|")
for scale, db_bytes, size, mb_, mo, mr in summary:
    print(f"| scale {scale}, {mb(db_bytes)} | {mb(size)} | {mb_:.2f} s | {mo:.2f} s | {mr:.2f} s | "
          f"{mo / mb_:.2f} (target <= 1.30) |")

"""Preview changes and record recovery benchmark, at two database sizes:

- the preview job (the backup restored into a prepared copy, checked, and
  compared with the live database), and the comparison alone as the product
  measures it, against one full-table fingerprint of both sides (the same
  row hash over every column, live and copy at once, as the comparison
  reads them), with the ratio (target: the comparison under 1.5x);
- the recovery of the demo's busiest course, deleted after the backup: its
  plan (a request), the recovery job and its undo (created to ended).

Run through scripts/bench.sh (BENCH_ONLY=records), which builds the release
binary and provides a throwaway PostgreSQL. Prints figures and ratios; it
passes or fails nothing.
"""

import concurrent.futures
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
SCALES = [int(s) for s in os.environ.get("BENCH_RECORDS_SCALES", "1,40").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

work = tempfile.mkdtemp(prefix="lms-bench-records-")
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


def fingerprint_sql():
    """One query per table: its row count and the sum of each row's hash
    over all its columns, as the product's fingerprint and comparison hash
    rows."""
    tables = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    out = []
    for t in tables:
        cols = psql(f"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                    f"WHERE attrelid = 'public.{t}'::regclass AND attnum > 0 AND NOT attisdropped")
        out.append(f"SELECT count(*), coalesce(sum(hash_record_extended(ROW({cols}), 0)), 0) FROM public.{t};")
    return "\n".join(out)


def fingerprint_both(copy):
    sql = fingerprint_sql()
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda db: psql(sql, db), [url.path.lstrip("/"), copy]))
    return time.monotonic() - start


class Console:
    """A signed-in administrator of a server on the loopback."""

    def __init__(self):
        password = secrets.token_urlsafe(18)
        run("user", "create", "--username", "bench", "--role", "admin", "--password-stdin", stdin=password + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # With BENCH_LOG set, the server's log is kept (the comparison logs each table's steps).
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

    def job(self, job):
        """Follows a job to its end (seldom, so polling adds no load) and
        returns its own time, as the control database recorded it."""
        while job["status"] == "running":
            time.sleep(0.2)
            job = self.call("GET", f"/api/admin/backup/jobs/{job['id']}")
        assert job["status"] == "succeeded", job
        return float(control(
            f"SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = '{job['id']}'"))

    def stop(self):
        self.server.terminate()
        self.server.wait()


print(f"{RUNS} runs each", flush=True)
summary = []
for scale in SCALES:
    psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    run("migrate")
    run("demo", "seed", "--scale", str(scale))
    db_bytes = int(psql("SELECT pg_database_size(current_database())"))
    run("backup", "create", "--notes", f"records bench scale {scale}")
    backup_id = control("SELECT id FROM backup_history WHERE status = 'completed' ORDER BY id DESC LIMIT 1")
    course = psql("SELECT c.id FROM courses c JOIN enrollments e ON e.course_id = c.id "
                  "GROUP BY c.id ORDER BY count(*) DESC, c.id LIMIT 1")
    psql(f"DELETE FROM courses WHERE id = {course}")
    psql("INSERT INTO courses (code, title) VALUES ('BENCH-NEW', 'written after the backup')")
    console = Console()
    preview, compare, fingerprint, plan_t, recover_t, undo_t = [], [], [], [], [], []
    rows = 0
    for i in range(RUNS):
        preview.append(console.job(console.call("POST", f"/api/admin/backup/{backup_id}/preview")))
        compare.append(int(control("SELECT compare_ms FROM prepared_copies")) / 1000)
        copy = control("SELECT database_name FROM prepared_copies")
        fingerprint.append(fingerprint_both(copy))
        start = time.monotonic()
        plan = console.call("POST", "/api/admin/backup/recover/plan", {"table": "courses", "key": course})
        plan_t.append(time.monotonic() - start)
        rows = sum(t["insert"] for t in plan["tables"])
        recover_t.append(console.job(console.call(
            "POST", "/api/admin/backup/recover",
            {"table": "courses", "key": course, "confirm": True, "expect_rows": rows})))
        undo_t.append(console.job(console.call("POST", "/api/admin/backup/recover/undo", {"confirm": True})))
        print(f"scale {scale} run {i + 1}: preview job {preview[-1]:.2f} s (comparison {compare[-1]:.2f} s, "
              f"fingerprint of both sides {fingerprint[-1]:.2f} s); plan {plan_t[-1]:.2f} s, "
              f"recovery of {rows} rows {recover_t[-1]:.2f} s, its undo {undo_t[-1]:.2f} s", flush=True)
    console.call("DELETE", "/api/admin/backup/preview")
    console.stop()
    m = statistics.median
    summary.append((scale, db_bytes, m(preview), m(compare), m(fingerprint), m(plan_t), rows, m(recover_t),
                    m(undo_t)))

print()
print("| database | preview job | comparison | fingerprint of both sides | comparison / fingerprint "
      "| plan | recovery (rows) | undo |")
print("|---|---|---|---|---|---|---|---|")
for scale, db_bytes, p, c, f, pl, rows, r, u in summary:
    print(f"| scale {scale}, {mb(db_bytes)} | {p:.2f} s | {c:.2f} s | {f:.2f} s | {c / f:.2f} (target < 1.5) "
          f"| {pl:.2f} s | {r:.2f} s ({rows}) | {u:.2f} s |")

"""What the drill, records and cost-curve benchmarks share: the scratch directory and
environment of a server under test, the lms-admin and psql helpers, and a
signed-in administrator of a server on the loopback who follows jobs.

Run through scripts/bench.sh, which builds the release binary and provides
a throwaway PostgreSQL (LMS_ADMIN_BIN, DATABASE_URL).
"""

import http.cookiejar
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


class Bench:
    """A scratch backup directory and the environment lms-admin runs with."""

    def __init__(self, name):
        self.work = tempfile.mkdtemp(prefix=f"lms-bench-{name}-")
        self.backups = os.path.join(self.work, "backups")
        os.makedirs(self.backups, mode=0o750)
        self.env = dict(os.environ, BACKUP_DIR=self.backups, BACKUP_RATE_LIMIT="0", MAX_BACKUP_SIZE="8GiB",
                        MAX_BACKUPS_TO_KEEP="2", DRILL_INTERVAL_HOURS="0",
                        RUST_LOG=os.environ.get("BENCH_LOG", "warn"))
        self.url = urllib.parse.urlparse(DB)
        self.pg_env = dict(os.environ, PGHOST=self.url.hostname, PGPORT=str(self.url.port),
                           PGUSER=self.url.username, PGPASSWORD=urllib.parse.unquote(self.url.password or ""),
                           PGDATABASE=self.database())

    def database(self):
        return self.url.path.lstrip("/")

    def run(self, *args, stdin=None):
        return subprocess.run([BIN, *args], env=self.env, input=stdin, text=True, check=True,
                              capture_output=True).stdout.strip()

    def psql(self, sql, db=None):
        args = ["psql", "-X", "-q", "-t", "-A", "-c", sql]
        if db:
            args[1:1] = ["-d", db]
        return subprocess.run(args, env=self.pg_env, text=True, check=True, capture_output=True).stdout.strip()

    def control(self, sql):
        return self.psql(sql, self.database() + "_control")

    def bare_restore(self, pg_restore, archive, jobs, name):
        """A bare `pg_restore --jobs=<jobs>` of `archive` into a new empty
        database `name` (dropped after): its time, the peer the jobs are
        compared with."""
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}")
        start = time.monotonic()
        subprocess.run([pg_restore, "--no-owner", "--no-acl", "--exit-on-error", f"--jobs={jobs}",
                        "-d", name, archive], env=self.pg_env, check=True)
        elapsed = time.monotonic() - start
        self.psql(f"DROP DATABASE {name}")
        return elapsed


def mb(n):
    return f"{n / 1048576:.1f} MB"


class Console:
    """A signed-in administrator of a server on the loopback."""

    def __init__(self, bench):
        self.bench = bench
        password = secrets.token_urlsafe(18)
        bench.run("user", "create", "--username", "bench", "--role", "admin", "--password-stdin",
                  stdin=password + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # With BENCH_LOG set, the server's log is kept (jobs log their steps' times).
        log = open(os.path.join(bench.work, "server.log"), "ab") if "BENCH_LOG" in os.environ else subprocess.DEVNULL
        self.server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=bench.env,
                                       stdout=log, stderr=log, cwd=bench.work)
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
        self.password = password
        self.login()

    def login(self):
        """Signs in (again: a restore signs everyone out)."""
        self.call("POST", "/api/auth/login", {"username": "bench", "password": self.password})

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
        with self.opener.open(req) as res:
            return json.loads(res.read() or b"null")

    def follow(self, job):
        """Follows a job to its end and returns it with its own time, from
        its creation (during the request) to its end, as the control
        database recorded them. It polls seldom (every 0.2 s), so the
        polling adds no load to what is measured."""
        while job["status"] == "running":
            time.sleep(0.2)
            job = self.call("GET", f"/api/admin/backup/jobs/{job['id']}")
        assert job["status"] == "succeeded", job
        return job, float(self.bench.control(
            f"SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = '{job['id']}'"))

    def stop(self):
        self.server.terminate()
        self.server.wait()

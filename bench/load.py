"""Load benchmark: a backup job while 50 administrators have the console open,
against the same job on an idle server, and sign-in timings for an unknown
username against an existing one with a wrong password.

Run through scripts/bench.sh (`BENCH_ONLY=load scripts/bench.sh` for this one
alone), which builds the release binary and provides a throwaway PostgreSQL
with an empty database for it. Everything stays on loopback, every loop
is bounded in count or time, and the server is stopped at the end. Prints
figures and ratios; it passes or fails nothing.

The sign-in rate limiter (app/src/ssr/limiter.rs: 20 attempts per client
address and 5 per username, then one per 12 s; there is no setting for it) is
not relaxed: the whole 127.0.0.0/8 block is loopback on Linux, so each session
and each timed sign-in connects from its own source address (127.0.2.x,
127.0.3.x), and the sign-ins are spread over several accounts so that none
uses more than its burst of 5.
"""

import csv
import hashlib
import http.client
import io
import json
import math
import os
import random
import secrets
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
SCALE = int(os.environ.get("BENCH_LOAD_SCALE", "10"))
ENTRIES = int(os.environ.get("BENCH_LOAD_ENTRIES", "5000"))
SESSIONS = int(os.environ.get("BENCH_LOAD_SESSIONS", "50"))
RUNS = int(os.environ.get("BENCH_LOAD_RUNS", "3"))
# Seconds between one session's rounds of (status, list); the console polls
# the status once a second. 0 makes every session a closed loop.
INTERVAL = float(os.environ.get("BENCH_LOAD_INTERVAL", "1"))
LOGINS = int(os.environ.get("BENCH_LOAD_LOGINS", "30"))
# No backup may take longer than this; the benchmark gives up instead.
MAX_SECONDS = float(os.environ.get("BENCH_LOAD_MAX_SECONDS", "600"))
PAGE = 20  # the console's page size (the API's default; it allows up to 200)
PER_USERNAME = 5  # the limiter's burst per username
ADMINS = math.ceil(SESSIONS / PER_USERNAME)
TIMING_USERS = 10

rng = random.Random(20261126)  # the same catalog and load pattern every run
work = tempfile.mkdtemp(prefix="lms-load-bench-")
backup_dir = os.path.join(work, "backups")
# The server never creates a missing backup directory: made here, as an operator would.
os.makedirs(backup_dir, mode=0o750)
# Retention keeps every backup, so the seeded catalog stays 5,000 entries
# (it still reads all of them after each backup); no backup rate limit.
env = dict(os.environ, BACKUP_DIR=backup_dir, BACKUP_RATE_LIMIT="0", MAX_BACKUPS_TO_KEEP="1000000",
           RUST_LOG=os.environ.get("BENCH_LOG", "warn"))
url = urllib.parse.urlparse(DB)
db_name = url.path.lstrip("/")
pg_env = dict(os.environ, PGHOST=url.hostname, PGPORT=str(url.port), PGUSER=url.username,
              PGPASSWORD=urllib.parse.unquote(url.password or ""), PGDATABASE=db_name)


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], env=env, input=stdin, text=True, check=True,
                          capture_output=True).stdout.strip()


def psql(sql, database=db_name, stdin=None):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
                          env=pg_env, input=stdin, text=True, check=True, capture_output=True).stdout.strip()


def control_sql(sql, stdin=None):
    # The control database is the LMS database's sibling `<lms db>_control`
    # (src/db.rs) unless CONTROL_DATABASE_URL says otherwise.
    return psql(sql, database=db_name + "_control", stdin=stdin)


def mb(n):
    return f"{n / 1048576:.1f} MB"


def ms(seconds):
    return f"{seconds * 1000:7.1f} ms"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User plus system CPU time a process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


port = free_port()
origin = f"http://127.0.0.1:{port}"


class Client:
    """One browser: its own loopback source address, a keep-alive connection
    and the session cookie. Sends the same-origin `Origin` header a browser
    sends on POST."""

    def __init__(self, source_ip="127.0.0.1"):
        self.source_ip = source_ip
        self.cookies = {}
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, timeout=60):
        """Returns (status, parsed JSON body or None). Raises on a broken
        connection, after closing it so the next request reconnects."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                                   source_address=(self.source_ip, 0))
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method not in ("GET", "HEAD"):
            headers["Origin"] = origin
        try:
            self.conn.request(method, path, body=data, headers=headers)
            res = self.conn.getresponse()
            raw = res.read()
        except Exception:
            self.close()
            raise
        for cookie in res.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        if res.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return res.status, parsed

    def call(self, method, path, body=None):
        """Like request, but anything but 2xx is an error."""
        status, parsed = self.request(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {parsed}")
        return parsed

    def sign_in(self, username, password):
        return self.call("POST", "/api/auth/login", {"username": username, "password": password})


server = None
try:
    # --- The LMS database and the accounts ----------------------------------
    print(f"seeding demo data at scale {SCALE} ...", flush=True)
    print(run("demo", "seed", "--scale", str(SCALE)))
    db_bytes = int(psql("SELECT pg_database_size(current_database())"))
    print(f"database size: {mb(db_bytes)}")

    # One account starts the backups; the sessions share ADMINS accounts (5
    # sign-ins each, the limiter's burst per username); the wrong-password
    # timings use TIMING_USERS more accounts (real argon2 hashes: the demo
    # learners' '!' hash would take the dummy-hash path too).
    start = time.monotonic()
    passwords = {}
    names = (["load-bench"] + [f"load-admin-{i + 1:02}" for i in range(ADMINS)]
             + [f"load-timing-{i + 1:02}" for i in range(TIMING_USERS)])
    for name in names:
        passwords[name] = secrets.token_urlsafe(18)
        run("user", "create", "--username", name, "--role", "admin", "--password-stdin",
            stdin=passwords[name] + "\n")
    print(f"created {len(names)} administrators in {time.monotonic() - start:.1f} s")

    server_log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=server_log, cwd=work)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the server exited at start-up; see its log")
            time.sleep(0.1)
    rss_start = rss_kb(server.pid)

    starter = Client()
    starter.sign_in("load-bench", passwords["load-bench"])

    def backup(label):
        """One backup job, from the request until the job reads succeeded."""
        start = time.monotonic()
        job = starter.call("POST", "/api/admin/backup/create", {"notes": f"load benchmark: {label}"})["job"]
        while job["status"] in ("queued", "running"):
            if time.monotonic() - start > MAX_SECONDS:
                raise SystemExit(f"the backup took more than {MAX_SECONDS:.0f} s; giving up")
            time.sleep(0.05)
            job = starter.call("GET", f"/api/admin/backup/jobs/{job['id']}")
        elapsed = time.monotonic() - start
        assert job["status"] == "succeeded", job
        return elapsed, job

    # A first backup, not timed: warms the caches, and its manifest is the
    # template for the seeded entries (so their rows are as wide as real ones).
    t, job = backup("warm-up")
    rss_warm = rss_kb(server.pid)
    template = json.loads(control_sql(f"SELECT manifest FROM backup_history WHERE id = {job['backup_id']}"))
    print(f"warm-up backup (not counted): {t:.2f} s, archive {mb(template['size_bytes'])}")

    # --- The catalog: ENTRIES rows, inserted with COPY ------------------------
    # Completed entries point at real files (a few KiB of random bytes each,
    # with their true size and SHA-256) so that they list, download and survive
    # start-up recovery like real backups (5,000 real archives would take
    # 5,000 times the warm-up backup's archive). Failed entries have no file,
    # as in real life, and 1 % are recorded as missing (file gone). One entry
    # every 2 hours back from 2 hours ago; kinds, creators and notes are mixed
    # like a real site's.
    start = time.monotonic()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    admins = [(2, "registrar"), (3, "it-ops"), (5, "dean-office")]
    manual_notes = ["before the term rollover", "before importing grades", "pre-upgrade to LMS 4.2",
                    "weekly manual check", "before bulk enrolment", None, None]
    rows, statuses, file_bytes = io.StringIO(), {}, 0
    out = csv.writer(rows)
    for i in range(ENTRIES):
        created = now - timedelta(hours=2 * (i + 1))
        roll = rng.random()
        if roll < 0.70:
            kind, by, notes = "scheduled", (None, "scheduler"), rng.choice(["nightly", None])
        elif roll < 0.92:
            kind, by, notes = "manual", rng.choice(admins), rng.choice(manual_notes)
        elif roll < 0.96:
            kind, by, notes = "uploaded", rng.choice(admins), rng.choice(["copy from staging", None])
        else:
            kind, by, notes = "pre_restore", rng.choice(admins), "taken automatically before a restore"
        prefix = "upload" if kind == "uploaded" else "backup"
        filename = f"{prefix}_{created:%Y%m%d_%H%M%S}.dump"
        roll = rng.random()
        status = "failed" if roll < 0.02 else "missing" if roll < 0.03 else "completed"
        statuses[status] = statuses.get(status, 0) + 1
        size = sha = manifest = completed = None
        if status != "failed":
            completed = created + timedelta(seconds=rng.randint(20, 400))
            content = b"PGDMP" + rng.randbytes(rng.randint(1024, 8192))
            size, sha = len(content), hashlib.sha256(content).hexdigest()
            if status == "completed":
                with open(os.path.join(backup_dir, filename), "wb") as f:
                    f.write(content)
                file_bytes += size
            manifest = json.dumps(dict(template, filename=filename, kind=kind, size_bytes=size, sha256=sha,
                                       created_at=created.isoformat(), completed_at=completed.isoformat(),
                                       created_by_id=by[0], created_by_name=by[1], notes=notes))
        out.writerow([filename, kind, status, size, sha, manifest, notes, by[0], by[1],
                      created.isoformat(), completed.isoformat() if completed else None])
    control_sql("COPY backup_history (filename, kind, status, size_bytes, sha256, manifest, notes, created_by_id,"
                " created_by_name, created_at, completed_at) FROM STDIN WITH (FORMAT csv)", stdin=rows.getvalue())
    control_sql("ANALYZE backup_history")
    total = starter.call("GET", "/api/admin/backup/list?limit=1")["total"]
    # One seeded entry through the download route, which checks the file's
    # size and SHA-256 against the catalog before it sends anything (else 409).
    sample_id = control_sql("SELECT min(id) FROM backup_history WHERE status = 'completed' AND id > "
                            f"{job['backup_id']}")
    status, _ = starter.request("GET", f"/api/admin/backup/download/{sample_id}")
    downloads = "downloads" if status == 200 else f"does not download (HTTP {status})"
    rss_seeded = rss_kb(server.pid)
    print(f"seeded {ENTRIES} catalog entries in {time.monotonic() - start:.1f} s: "
          + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
          + f"; completed ones point at real files ({mb(file_bytes)} in all), and one {downloads}; "
          f"the catalog lists {total}")

    # --- 50 sessions -----------------------------------------------------------
    sessions, sign_in_times = [], []
    for i in range(SESSIONS):
        client = Client(f"127.0.2.{i + 1}")
        user = f"load-admin-{i // PER_USERNAME + 1:02}"
        start = time.monotonic()
        client.sign_in(user, passwords[user])
        sign_in_times.append(time.monotonic() - start)
        sessions.append(client)
    print(f"{SESSIONS} sessions signed in ({ADMINS} accounts, one source address each), "
          f"median sign-in {ms(statistics.median(sign_in_times)).strip()}")

    # samples[kind] = [(start, latency, problem or None)] of the current run;
    # loaded_* keep what fell within the backups, cpu the CPU seconds the
    # server and this load generator used meanwhile, peak the largest RSS.
    samples = {"status": [], "list": []}
    record_lock = threading.Lock()
    loaded_samples = {"status": [], "list": []}
    loaded_errors = {"status": [], "list": []}
    cpu = [0.0, 0.0]
    peak = [0]

    def session_loop(index, client, stop):
        """Polls the status and lists a page each INTERVAL until stopped:
        the first page and a random page of the catalog in turn."""
        pages = random.Random(index)
        next_round = time.monotonic() + pages.random() * INTERVAL  # browsers opened at different times
        n = 0
        while not stop.is_set():
            delay = next_round - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            next_round = max(next_round + INTERVAL, time.monotonic())
            skip = 0 if n % 2 == 0 else pages.randrange(0, ENTRIES, PAGE)
            n += 1
            for kind, path in (("status", "/api/admin/backup/status"),
                               ("list", f"/api/admin/backup/list?skip={skip}&limit={PAGE}")):
                start = time.monotonic()
                try:
                    status, _ = client.request("GET", path)
                    problem = None if 200 <= status < 300 else f"HTTP {status}"
                except Exception as e:  # noqa: BLE001 - every failure counts
                    problem = f"{type(e).__name__}: {e}"
                latency = time.monotonic() - start
                with record_lock:
                    samples[kind].append((start, latency, problem))

    def loaded_backup(label):
        """The backup job while every session polls; only requests that start
        while the job runs are counted."""
        stop = threading.Event()
        for client in sessions:
            client.close()  # a fresh keep-alive connection for each run
        threads = [threading.Thread(target=session_loop, args=(i, c, stop)) for i, c in enumerate(sessions)]
        for th in threads:
            th.start()
        time.sleep(max(2.0, INTERVAL))  # every session has made a round first
        begin = time.monotonic()
        cpu_begin = (cpu_seconds(server.pid), time.process_time())
        try:
            t, _ = backup(label)
        finally:
            end = time.monotonic()
            cpu[0] += cpu_seconds(server.pid) - cpu_begin[0]
            cpu[1] += time.process_time() - cpu_begin[1]
            stop.set()
            for th in threads:
                th.join(timeout=120)
        with record_lock:
            for kind in samples:
                window = [s for s in samples[kind] if begin <= s[0] < end]
                loaded_samples[kind].extend(lat for _, lat, _ in window)
                loaded_errors[kind].extend(problem for _, _, problem in window if problem)
                samples[kind].clear()
        return t

    stop_watch = threading.Event()

    def watch():
        while not stop_watch.is_set():
            peak[0] = max(peak[0], rss_kb(server.pid))
            stop_watch.wait(0.05)

    # --- Backups: idle and loaded, alternating which goes first ---------------
    rss_before = rss_kb(server.pid)
    watcher = threading.Thread(target=watch)
    watcher.start()
    idle, loaded = [], []
    try:
        for i in range(RUNS):
            for side in (("idle", "loaded") if i % 2 == 0 else ("loaded", "idle")):
                if side == "idle":
                    t, _ = backup(f"idle run {i + 1}")
                    idle.append(t)
                    print(f"run {i + 1}: backup job, idle server          {t:6.2f} s", flush=True)
                else:
                    t = loaded_backup(f"loaded run {i + 1}")
                    loaded.append(t)
                    print(f"run {i + 1}: backup job, {SESSIONS} sessions polling {t:6.2f} s", flush=True)
    finally:
        stop_watch.set()
        watcher.join()
    rss_after = rss_kb(server.pid)

    m_idle, m_loaded = statistics.median(idle), statistics.median(loaded)
    ratio = m_loaded / m_idle
    per_round = f"every {INTERVAL:g} s" if INTERVAL > 0 else "back to back (closed loop)"
    print()
    print(f"database {mb(db_bytes)} (scale {SCALE}), catalog of {ENTRIES} seeded entries, {RUNS} runs each")
    print(f"load: {SESSIONS} sessions, each {per_round}: GET /status, then GET /list?limit={PAGE} "
          f"(the first page and a random page in turn); counted while the backup runs")
    for kind in ("list", "status"):
        lat = sorted(loaded_samples[kind])
        errs = loaded_errors[kind]
        if not lat:
            print(f"{kind:6}: no requests")
            continue
        print(f"{kind:6}: {len(lat):6d} requests, {len(errs)} errors; p50 {ms(percentile(lat, 50))}  "
              f"p95 {ms(percentile(lat, 95))}  p99 {ms(percentile(lat, 99))}  max {ms(lat[-1])}")
        for problem in sorted(set(errs))[:5]:
            print(f"        {errs.count(problem)} x {problem}")
    rate = sum(len(v) for v in loaded_samples.values()) / sum(loaded)
    print(f"request rate while the backup ran: {rate:.0f} requests/s; CPU meanwhile: the server "
          f"{cpu[0] / sum(loaded):.0%} of a core, this load generator {cpu[1] / sum(loaded):.0%} "
          f"(of {os.cpu_count()} cores, shared with PostgreSQL and pg_dump)")
    print(f"median backup job idle:   {m_idle:6.2f} s")
    print(f"median backup job loaded: {m_loaded:6.2f} s")
    print(f"ratio loaded / idle:      {ratio:6.2f}  (target <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
    print(f"server RSS: at start {rss_start / 1024:.1f} MB, after the warm-up backup {rss_warm / 1024:.1f} MB, "
          f"after seeding the catalog {rss_seeded / 1024:.1f} MB, after the {SESSIONS} sign-ins {rss_before / 1024:.1f} MB")
    print(f"server RSS over the runs: before {rss_before / 1024:.1f} MB, peak {peak[0] / 1024:.1f} MB, "
          f"after {rss_after / 1024:.1f} MB (growth {(rss_after - rss_before) / 1024:.1f} MB)")

    # --- Sign-in timings ---------------------------------------------------------
    # Unknown usernames (each new, so the per-username limit never applies)
    # against existing accounts with a wrong password (TIMING_USERS accounts,
    # at most 5 attempts each), interleaved, one at a time, each from a fresh
    # source address and connection. Both should verify an argon2 hash: the
    # unknown one against a dummy hash.
    timings = {"unknown username": [], "wrong password": []}
    unexpected = []
    for i in range(2 * LOGINS):
        kind = "unknown username" if i % 2 == 0 else "wrong password"
        if kind == "unknown username":
            username = f"nobody-{secrets.token_hex(4)}"
        else:
            username = f"load-timing-{(i // 2) % TIMING_USERS + 1:02}"
        client = Client(f"127.0.{3 + i // 250}.{i % 250 + 1}")
        start = time.monotonic()
        status, body = client.request("POST", "/api/auth/login",
                                      {"username": username, "password": secrets.token_urlsafe(12)})
        elapsed = time.monotonic() - start
        client.close()
        if status != 401:
            unexpected.append(f"{kind}: HTTP {status}")
        timings[kind].append(elapsed)
    print()
    m_unknown = statistics.median(timings["unknown username"])
    m_wrong = statistics.median(timings["wrong password"])
    print(f"sign-in, unknown username (n={LOGINS}):                   median {ms(m_unknown)}  "
          f"(min {ms(min(timings['unknown username'])).strip()}, max {ms(max(timings['unknown username'])).strip()})")
    print(f"sign-in, existing username, wrong password (n={LOGINS}): median {ms(m_wrong)}  "
          f"(min {ms(min(timings['wrong password'])).strip()}, max {ms(max(timings['wrong password'])).strip()})")
    print(f"ratio wrong password / unknown username: {m_wrong / m_unknown:.2f}  "
          f"(both verify an argon2 hash; a ratio near 1 means the answer does not tell whether the account exists)")
    print(f"answers other than 401: {len(unexpected)}" + (f" ({', '.join(sorted(set(unexpected)))})" if unexpected else ""))
finally:
    if server is not None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    subprocess.run(["rm", "-rf", work])

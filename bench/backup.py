"""Backup benchmark: our full backup job against a bare `pg_dump -Fc`, and a
large download through the HTTP route with the server's memory watched.

Run through scripts/bench.sh, which builds the release binary and provides a
throwaway PostgreSQL. Prints figures and ratios; it passes or fails nothing.
"""

import http.cookiejar
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
PG_DUMP = os.environ["BENCH_PG_DUMP"]
PG_RESTORE = os.environ["BENCH_PG_RESTORE"]
SCALE = int(os.environ.get("BENCH_SCALE", "40"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DOWNLOAD_MB = int(os.environ.get("BENCH_DOWNLOAD_MB", "520"))

work = tempfile.mkdtemp(prefix="lms-bench-")
# The server never creates a missing backup directory: made here, as an operator would.
os.makedirs(os.path.join(work, "backups"), mode=0o750)
env = dict(os.environ, BACKUP_DIR=os.path.join(work, "backups"), BACKUP_RATE_LIMIT="0",
           MAX_BACKUP_SIZE="8GiB", MAX_BACKUPS_TO_KEEP="2", RUST_LOG=os.environ.get("BENCH_LOG", "warn"))
url = urllib.parse.urlparse(DB)
pg_env = dict(os.environ, PGHOST=url.hostname, PGPORT=str(url.port), PGUSER=url.username,
              PGPASSWORD=urllib.parse.unquote(url.password or ""), PGDATABASE=url.path.lstrip("/"))


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], env=env, input=stdin, text=True, check=True,
                          capture_output=True).stdout.strip()


def psql(sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-c", sql], env=pg_env, text=True,
                          check=True, capture_output=True).stdout.strip()


def control_sql(sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", url.path.lstrip("/") + "_control", "-c", sql],
                          env=pg_env, text=True, check=True, capture_output=True).stdout.strip()


def mb(n):
    return f"{n / 1048576:.1f} MB"


print(f"seeding demo data at scale {SCALE} ...", flush=True)
print(run("demo", "seed", "--scale", str(SCALE)))
db_bytes = int(psql("SELECT pg_database_size(current_database())"))
print(f"database size: {mb(db_bytes)}")

password = secrets.token_urlsafe(18)
run("user", "create", "--username", "bench", "--role", "admin", "--password-stdin", stdin=password + "\n")
port = int(subprocess.run(["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"],
                          capture_output=True, text=True).stdout)
server_log = open(os.path.join(work, "server.log"), "w")
server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                          stdout=subprocess.DEVNULL, stderr=server_log, cwd=work)
base = f"http://127.0.0.1:{port}"
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    with opener.open(req) as res:
        return json.loads(res.read() or b"null")


for _ in range(200):
    try:
        urllib.request.urlopen(base + "/login")
        break
    except OSError:
        time.sleep(0.1)
call("POST", "/api/auth/login", {"username": "bench", "password": password})


# Jobs are followed seldom (every 0.2 s), so following them adds no load to
# what is measured on two cores, and timed as the control database recorded
# them: from the job's creation (in the request) to its end.
FOLLOW_EVERY = 0.2


def job_seconds(job_id):
    return float(control_sql(
        f"SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = '{job_id}'"))


def our_backup():
    job = call("POST", "/api/admin/backup/create")["job"]
    while job["status"] == "running":
        time.sleep(FOLLOW_EVERY)
        job = call("GET", f"/api/admin/backup/jobs/{job['id']}")
    assert job["status"] == "succeeded", job
    return job_seconds(job["id"]), job


def bare_pg_dump():
    out = os.path.join(work, "bare.dump")
    start = time.monotonic()
    subprocess.run([PG_DUMP, "-Fc", "-f", out], env=pg_env, check=True)
    elapsed = time.monotonic() - start
    size = os.path.getsize(out)
    os.remove(out)
    return elapsed, size


ours, bare = [], []
for i in range(RUNS):
    # Alternate the order so neither side always meets a warmer cache.
    for side in (("bare", "ours") if i % 2 == 0 else ("ours", "bare")):
        if side == "bare":
            t, size = bare_pg_dump()
            bare.append(t)
            print(f"run {i + 1}: bare pg_dump -Fc   {t:6.2f} s  ({mb(size)})", flush=True)
        else:
            t, job = our_backup()
            ours.append(t)
            print(f"run {i + 1}: backup job (verified) {t:6.2f} s", flush=True)

m_ours, m_bare = statistics.median(ours), statistics.median(bare)
print()
print(f"database {mb(db_bytes)}, {RUNS} runs each")
print(f"median bare pg_dump -Fc:                 {m_bare:6.2f} s")
print(f"median backup job (fingerprint, sha256, full-read verify, fsync): {m_ours:6.2f} s")
print(f"ratio backup job / bare pg_dump:         {m_ours / m_bare:6.2f}  (target <= 1.30)")

# Restore: the whole job (checksum, shadow restore, fingerprint check,
# migrations, swap) against a bare pg_restore of the same archive into an
# empty database, with the same number of parallel jobs.
RESTORE_JOBS = max(1, min(4, os.cpu_count() or 1))


def bare_restore(archive):
    name = "bench_bare_restore"
    psql(f"DROP DATABASE IF EXISTS {name}")
    psql(f"CREATE DATABASE {name}")
    start = time.monotonic()
    subprocess.run([PG_RESTORE, "--no-owner", "--no-acl", "--exit-on-error", f"--jobs={RESTORE_JOBS}",
                    "-d", name, archive], env=pg_env, check=True)
    elapsed = time.monotonic() - start
    psql(f"DROP DATABASE {name}")
    return elapsed


def our_restore(backup_id):
    job = call("POST", f"/api/admin/backup/restore/{backup_id}", {"confirm": True})
    # The restore ends every session, so follow the job in the control database.
    while True:
        status, message = control_sql(f"SELECT status || '|' || coalesce(message, '') FROM jobs WHERE id = '{job['id']}'").split("|", 1)
        if status != "running":
            break
        time.sleep(FOLLOW_EVERY)
    elapsed = job_seconds(job["id"])
    if status != "succeeded":
        with open(os.path.join(work, "server.log")) as log:
            print("".join(log.readlines()[-30:]))
        raise SystemExit(f"restore failed: {message}")
    call("POST", "/api/auth/login", {"username": "bench", "password": password})
    window = float(message.split("maintenance for ")[1].split(" s")[0])
    return elapsed, window


def restore_round(label, backup):
    archive = os.path.join(env["BACKUP_DIR"], backup["filename"])
    bare_runs, our_runs, windows = [], [], []
    for i in range(RUNS):
        bare_runs.append(bare_restore(archive))
        t, w = our_restore(backup["id"])
        our_runs.append(t)
        windows.append(w)
        print(f"{label} run {i + 1}: bare pg_restore {bare_runs[-1]:6.2f} s, restore job {t:6.2f} s, "
              f"maintenance window {w:.2f} s", flush=True)
    mb_, mo = statistics.median(bare_runs), statistics.median(our_runs)
    print(f"{label}: median bare pg_restore {mb_:.2f} s, median restore job {mo:.2f} s, ratio {mo / mb_:.2f} "
          f"(target <= 1.3), median maintenance window {statistics.median(windows):.2f} s (target <= 2 s)")


latest = call("GET", "/api/admin/backup/list?limit=1")["backups"][0]
print(f"\nrestore of {latest['filename']} ({mb(latest['size_bytes'])} archive, {mb(db_bytes)} database), "
      f"--jobs={RESTORE_JOBS}")
restore_round(f"{mb(db_bytes)} db", latest)

# A large download: add incompressible attachments until the archive passes
# DOWNLOAD_MB, back it up, then stream it through the HTTP route.
count = DOWNLOAD_MB * 1024 // 64
print(f"\nadding {count} attachments of 64 KiB for the download test ...", flush=True)
batch = 500
for offset in range(0, count, batch):
    n = min(batch, count - offset)
    psql(f"""WITH ls AS (SELECT array_agg(id ORDER BY id) AS a FROM lessons)
             INSERT INTO lesson_attachments (lesson_id, filename, content_type, content)
             SELECT ls.a[1 + (g * 31) % cardinality(ls.a)], format('bench-%s.bin', g), 'application/octet-stream',
                    decode((SELECT string_agg(md5(g || ':' || s || ':' || random()), '') FROM generate_series(1, 4096) AS s), 'hex')
             FROM generate_series({offset + 1}, {offset + n}) AS g, ls""")
t, job = our_backup()
backup = call("GET", f"/api/admin/backup/{job['backup_id']}")
size = backup["size_bytes"]
print(f"backup of {mb(size)} took {t:.2f} s")
big_db = int(psql("SELECT pg_database_size(current_database())"))
t, window = our_restore(backup["id"])
print(f"restore of the {mb(big_db)} database: {t:.2f} s, maintenance window {window:.2f} s")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


peak = [0]
stop = threading.Event()


def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kb(server.pid))
        time.sleep(0.02)


before = rss_kb(server.pid)
watcher = threading.Thread(target=watch)
watcher.start()
start = time.monotonic()
received = 0
with opener.open(base + f"/api/admin/backup/download/{backup['id']}") as res:
    while chunk := res.read(1 << 20):
        received += len(chunk)
elapsed = time.monotonic() - start
stop.set()
watcher.join()
assert received == size, (received, size)
print(f"download of {mb(received)}: {elapsed:.2f} s, {received / 1048576 / elapsed:.0f} MB/s "
      f"(includes the SHA-256 check of the whole file before sending)")
print(f"server RSS before {before / 1024:.1f} MB, peak during {peak[0] / 1024:.1f} MB, "
      f"growth {(peak[0] - before) / 1024:.1f} MB  (target <= 32 MB)")

server.terminate()
server.wait()
subprocess.run(["rm", "-rf", work])

"""What an off-site copy costs: the backup job (`lms-admin backup create`)
local only, with its copy to an S3-compatible server on the loopback, and
with that copy encrypted (age); the copy phase's speed against boto3's
`upload_file` of the same archive to the same server, side by side (as boto3
sends by default, and declaring no checksum as the product's client does);
and the process's peak RSS in each. Prints figures and ratios; asserts nothing.

Run through scripts/bench.sh (BENCH_ONLY=offsite): it builds the release
binary, starts a throwaway cluster and an S3 server, and sets DATABASE_URL,
LMS_ADMIN_BIN, TEST_S3_ENDPOINT and S3_VENV.
BENCH_OFFSITE_MB (550): incompressible data added to a scale-1 demo database,
  so the archive is at least that large (the upload the RSS is watched over).
BENCH_OFFSITE_RUNS (3): runs of each kind; medians are printed.
"""

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse

BIN = os.environ["LMS_ADMIN_BIN"]
DB = os.environ["DATABASE_URL"]
S3 = os.environ["TEST_S3_ENDPOINT"]
PYTHON = os.path.join(os.environ["S3_VENV"], "bin", "python")
EXTRA_MB = int(os.environ.get("BENCH_OFFSITE_MB", "550"))
RUNS = int(os.environ.get("BENCH_OFFSITE_RUNS", "3"))

work = tempfile.mkdtemp(prefix="lms-offsite-bench-")
url = urllib.parse.urlparse(DB)
pg_env = dict(os.environ, PGHOST=url.hostname, PGPORT=str(url.port), PGUSER=url.username,
              PGPASSWORD=urllib.parse.unquote(url.password or ""))
S3_ENV = {"S3_ENDPOINT": S3, "S3_FORCE_PATH_STYLE": "true", "S3_REGION": "us-east-1",
          "AWS_ACCESS_KEY_ID": "bench-access-key", "AWS_SECRET_ACCESS_KEY": "bench-secret-key"}


def sql(statement):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url.path.lstrip("/"), "-c", statement],
                   env=pg_env, check=True, capture_output=True)


# The bench's own throwaway keys (moto takes any; s3s-fs is started with these).
CLIENT = (f"endpoint_url={S3!r}, aws_access_key_id={S3_ENV['AWS_ACCESS_KEY_ID']!r}, "
          f"aws_secret_access_key={S3_ENV['AWS_SECRET_ACCESS_KEY']!r}, region_name='us-east-1'")


def make_bucket(name):
    script = f"""
import boto3
boto3.client("s3", {CLIENT}).create_bucket(Bucket={name!r})
"""
    subprocess.run([PYTHON, "-c", script], check=True, capture_output=True)


def empty_bucket(name):
    """Deletes what a run left in a bucket (the server keeps it in memory)."""
    script = f"""
import boto3
s3 = boto3.resource("s3", {CLIENT})
s3.Bucket({name!r}).objects.all().delete()
"""
    subprocess.run([PYTHON, "-c", script], check=True, capture_output=True)


def peak_rss_while(proc):
    """Samples the process's RSS every 50 ms until it exits; the peak in MB."""
    peak = [0]

    def watch():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            # The process ended between the poll and the read (the file
            # then vanishes, or reading it finds no process).
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    return t, peak


def backup(kind, extra_env):
    """One `backup create`: wall seconds, the off-site phase's seconds (if
    any), the archive's size, the peak RSS in MB, and the phase's send and
    read-back seconds apart (if any)."""
    # One directory for every kind: the catalog is shared, and the console
    # refuses a directory that holds none of the backups it lists.
    backup_dir = os.path.join(work, "backups")
    os.makedirs(backup_dir, mode=0o750, exist_ok=True)
    env = dict(os.environ, BACKUP_DIR=backup_dir, BACKUP_RATE_LIMIT="0", MAX_BACKUP_SIZE="4GiB",
               MAX_BACKUPS_TO_KEEP="1", RUST_LOG="info", **extra_env)
    start = time.monotonic()
    proc = subprocess.Popen([BIN, "backup", "create"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watcher, peak = peak_rss_while(proc)
    out, err = proc.communicate()
    watcher.join()
    wall = time.monotonic() - start
    if proc.returncode != 0 or "note:" in out:
        raise SystemExit(f"backup ({kind}) did not go as planned:\n{out}\n{err[-2000:]}")
    offsite = None
    split = (None, None)
    for line in err.splitlines():
        clean = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"phase=offsite ms=(\d+)", clean)
        if m and "phase done" in clean:
            offsite = int(m.group(1)) / 1000
        m = re.search(r"send_ms=(\d+) read_back_ms=(\d+)", clean)
        if m:
            split = (int(m.group(1)) / 1000, int(m.group(2)) / 1000)
    newest = max((os.path.join(backup_dir, f) for f in os.listdir(backup_dir) if f.endswith(".dump")),
                 key=os.path.getmtime)
    size = os.path.getsize(newest)
    return wall, offsite, size, peak[0] / 1024, split


def boto3_upload(path, bucket, checksum="when_supported"):
    """Seconds for boto3's upload_file of `path`, and for it plus reading the
    object back and hashing it (what the product's copy phase does).
    `checksum` is botocore's request_checksum_calculation: by default boto3
    declares a CRC32 per part; "when_required" declares none, as the
    product's client does, which asks the server for other work (moto then
    computes a checksum of the whole object when the upload completes)."""
    script = f"""
import boto3, hashlib, time
from botocore.config import Config
s3 = boto3.client("s3", {CLIENT}, config=Config(request_checksum_calculation={checksum!r}))
t = time.monotonic()
s3.upload_file({path!r}, {bucket!r}, "peer.dump")
up = time.monotonic() - t
h = hashlib.sha256()
for chunk in s3.get_object(Bucket={bucket!r}, Key="peer.dump")["Body"].iter_chunks(1 << 20):
    h.update(chunk)
print(up, time.monotonic() - t)
"""
    out = subprocess.run([PYTHON, "-c", script], check=True, capture_output=True, text=True).stdout
    up, both = (float(x) for x in out.split())
    return up, both


def median(values):
    return statistics.median(values)


print(f"Seeding a scale-1 demo database plus {EXTRA_MB} MB of incompressible rows…", flush=True)
subprocess.run([BIN, "demo", "seed", "--scale", "1"], env=dict(os.environ, BACKUP_DIR=work), check=True,
               capture_output=True)
sql("CREATE TABLE IF NOT EXISTS bench_blobs (id int PRIMARY KEY, payload bytea)")
sql("TRUNCATE bench_blobs")
# 1 MiB rows of md5 output (random-looking bytes pg_dump cannot compress).
sql(f"""INSERT INTO bench_blobs
        SELECT g, (SELECT string_agg(decode(md5(g::text || ':' || s || ':' || random()), 'hex'), ''::bytea)
                   FROM generate_series(1, 65536) s)
        FROM generate_series(1, {EXTRA_MB}) g""")

age_key = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True)
recipient = re.search(r"age1[0-9a-z]+", age_key.stderr + age_key.stdout).group(0)

def newest_archive():
    backups = os.path.join(work, "backups")
    return max((os.path.join(backups, f) for f in os.listdir(backups) if f.endswith(".dump")),
               key=os.path.getmtime)


def peer_run(run):
    """boto3's upload_file of the newest archive to a bucket of its own, as
    boto3 sends by default and declaring no checksum (in turns)."""
    results = {}
    for checksum in (["when_supported", "when_required"][::1 if run % 2 == 0 else -1]):
        bucket = f"bench-peer-{run}-{checksum.replace('_', '-')}-{os.getpid()}"
        make_bucket(bucket)
        results[checksum] = boto3_upload(newest_archive(), bucket, checksum)
        empty_bucket(bucket)
        up, both = results[checksum]
        print(f"  run {run + 1} boto3 ({checksum}): upload_file {up:5.1f} s, with read-back {both:5.1f} s",
              flush=True)
    return results["when_supported"], results["when_required"]


# boto3's uploads take turns with the product's runs (first in one round,
# last in the next), so a server that slows as the bench goes on weighs on
# both sides alike.
results = {"local": [], "offsite": [], "encrypted": []}
peer = []
for run in range(RUNS):
    if run % 2 == 1:
        peer.append(peer_run(run))
    for kind in results:
        extra = {}
        if kind != "local":
            bucket = f"bench-{kind}-{run}-{os.getpid()}"
            make_bucket(bucket)
            extra = dict(S3_ENV, S3_BUCKET=bucket)
        if kind == "encrypted":
            extra["AGE_RECIPIENTS"] = recipient
        results[kind].append(backup(kind, extra))
        if kind != "local":
            empty_bucket(extra["S3_BUCKET"])
        wall, phase, size, rss, _ = results[kind][-1]
        print(f"  run {run + 1} {kind:9}: {wall:6.1f} s (off-site phase {phase or 0:5.1f} s), "
              f"archive {size / 1e6:6.1f} MB, peak RSS {rss:5.1f} MB", flush=True)
    if run % 2 == 0:
        peer.append(peer_run(run))

size_mb = results["local"][0][2] / 1e6
local = median(r[0] for r in results["local"])
offsite = median(r[0] for r in results["offsite"])
encrypted = median(r[0] for r in results["encrypted"])
phase = median(r[1] for r in results["offsite"])
phase_enc = median(r[1] for r in results["encrypted"])
send = median(r[4][0] for r in results["offsite"])
read_back = median(r[4][1] for r in results["offsite"])
up = median(p[0][0] for p in peer)
up_back = median(p[0][1] for p in peer)
up_plain = median(p[1][0] for p in peer)
rss = {k: median(r[3] for r in v) for k, v in results.items()}

print()
print(f"Archive: {size_mb:.1f} MB; medians of {RUNS} runs each")
print(f"  backup job, local only:               {local:6.1f} s")
print(f"  backup job with off-site copy:        {offsite:6.1f} s  ({offsite / local:.2f}x local)")
print(f"  backup job with encrypted copy:       {encrypted:6.1f} s  ({encrypted / offsite:.2f}x the plain copy)")
print(f"  off-site phase (send + read back):    {phase:6.1f} s  = {size_mb / phase:6.1f} MB/s of archive")
print(f"    of which sending:                   {send:6.1f} s  = {size_mb / send:6.1f} MB/s")
print(f"    of which reading back, the manifest: {read_back:5.1f} s  = {size_mb / read_back:6.1f} MB/s")
print(f"  off-site phase, encrypted:            {phase_enc:6.1f} s  ({phase_enc / phase:.2f}x plain)")
print(f"  boto3 upload_file alone:              {up:6.1f} s  = {size_mb / up:6.1f} MB/s "
      f"(the product's sending takes {send / up:.2f}x)")
print(f"  boto3 upload_file, no checksum:       {up_plain:6.1f} s  = {size_mb / up_plain:6.1f} MB/s "
      f"(declaring none, as the product's client: its sending takes {send / up_plain:.2f}x)")
print(f"  boto3 upload_file + read back, hash:  {up_back:6.1f} s  ({phase / up_back:.2f}x: the product's phase against it)")
print(f"  peak RSS: local {rss['local']:.1f} MB, with copy {rss['offsite']:.1f} MB "
      f"(+{rss['offsite'] - rss['local']:.1f}), encrypted {rss['encrypted']:.1f} MB "
      f"(+{rss['encrypted'] - rss['local']:.1f})")
shutil.rmtree(work, ignore_errors=True)

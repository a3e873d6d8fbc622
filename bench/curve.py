"""Cost curve: the backup job against a bare `pg_dump -Fc` and the restore job
against a bare `pg_restore --jobs=N`, at database sizes spanning more than
20x, with the maintenance window and the server's peak RSS at each; pg_dump's
gzip levels timed and sized at two of the sizes; and a chart of time against
database size (SVG, written to BENCH_CHART).

Run through scripts/bench.sh (BENCH_ONLY=curve), which builds the release
binary and provides a throwaway PostgreSQL. Prints figures and ratios; it
passes or fails nothing.
"""

import os
import statistics
import subprocess
import threading
import time

from harness import RUNS, Bench, Console, mb

PG_DUMP = os.environ["BENCH_PG_DUMP"]
PG_RESTORE = os.environ["BENCH_PG_RESTORE"]
SCALES = [int(s) for s in os.environ.get("BENCH_CURVE_SCALES", "4,40,100").split(",")]
# The sizes pg_dump's gzip levels are measured at.
LEVEL_SCALES = [int(s) for s in os.environ.get("BENCH_LEVEL_SCALES", "4,40").split(",") if s]
LEVELS = [0, 1, 3, 6, 9]
CHART = os.environ.get("BENCH_CHART", "")
JOBS = max(1, min(4, os.cpu_count() or 1))

bench = Bench("curve")
run, psql, control = bench.run, bench.psql, bench.control
pg_env = bench.pg_env


def compression_of(archive):
    """The gzip level an archive was written with, as its table of contents says."""
    listing = subprocess.run([PG_RESTORE, "--list", archive], check=True, capture_output=True, text=True).stdout
    return next(line.split(":")[1].strip() for line in listing.splitlines() if "Compression:" in line)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Peak:
    """The highest RSS of a process while it is watched (sampled every 20 ms)."""

    def __init__(self, pid):
        self.pid, self.kb, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self.watch)
        self.thread.start()

    def watch(self):
        while not self.stop.is_set():
            self.kb = max(self.kb, rss_kb(self.pid))
            time.sleep(0.02)

    def end(self):
        self.stop.set()
        self.thread.join()
        return self.kb / 1024


def bare_dump(level=None):
    out = os.path.join(bench.work, "bare.dump")
    args = [PG_DUMP, "-Fc", "-f", out] + ([f"-Z{level}"] if level is not None else [])
    start = time.monotonic()
    subprocess.run(args, env=pg_env, check=True)
    elapsed = time.monotonic() - start
    size = os.path.getsize(out)
    os.remove(out)
    return elapsed, size


def bare_restore(archive):
    return bench.bare_restore(PG_RESTORE, archive, JOBS, "bench_bare_curve")


def our_backup(console):
    job, elapsed = console.follow(console.call("POST", "/api/admin/backup/create")["job"])
    size = int(control(f"SELECT size_bytes FROM backup_history WHERE id = {int(job['backup_id'])}"))
    return elapsed, size, job["backup_id"]


def our_restore(console, backup_id):
    job = console.call("POST", f"/api/admin/backup/restore/{backup_id}", {"confirm": True})
    # The restore ends every session: followed in the control database.
    while True:
        status, message = control(
            f"SELECT status || '|' || coalesce(message, '') FROM jobs WHERE id = '{job['id']}'").split("|", 1)
        if status != "running":
            break
        time.sleep(0.2)
    if status != "succeeded":
        raise SystemExit(f"restore failed: {message}")
    elapsed = float(control(
        f"SELECT extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = '{job['id']}'"))
    console.login()
    return elapsed, float(message.split("maintenance for ")[1].split(" s")[0])


def alternate(i, first, second):
    """Both sides once, in alternating order so neither always meets a warmer cache."""
    return (first, second) if i % 2 == 0 else (second, first)


print(f"{RUNS} runs each, alternating order; pg_restore --jobs={JOBS}", flush=True)
levels, points, used = {}, [], set()
for scale in SCALES:
    psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    run("migrate")
    run("demo", "seed", "--scale", str(scale))
    psql("VACUUM ANALYZE")
    db_bytes = int(psql("SELECT pg_database_size(current_database())"))
    print(f"\nscale {scale}: database {mb(db_bytes)}", flush=True)

    if scale in LEVEL_SCALES:
        for level in LEVELS:
            runs = [bare_dump(level) for _ in range(RUNS)]
            t, size = statistics.median(r[0] for r in runs), runs[0][1]
            levels[(scale, level)] = (t, size)
            print(f"  pg_dump -Fc -Z{level}: {t:6.2f} s, {mb(size)}", flush=True)

    console = Console(bench)
    peak = Peak(console.server.pid)
    bare, ours = [], []
    for i in range(RUNS):
        for side in alternate(i, "bare", "ours"):
            if side == "bare":
                bare.append(bare_dump())
            else:
                ours.append(our_backup(console))
        print(f"  run {i + 1}: bare pg_dump -Fc {bare[-1][0]:6.2f} s ({mb(bare[-1][1])}), "
              f"backup job {ours[-1][0]:6.2f} s ({mb(ours[-1][1])})", flush=True)
    backup_id = ours[-1][2]
    archive = os.path.join(bench.backups, control(f"SELECT filename FROM backup_history WHERE id = {int(backup_id)}"))
    used.add(compression_of(archive))
    bare_r, ours_r, windows = [], [], []
    for i in range(RUNS):
        for side in alternate(i, "bare", "ours"):
            if side == "bare":
                bare_r.append(bare_restore(archive))
            else:
                t, w = our_restore(console, backup_id)
                ours_r.append(t)
                windows.append(w)
        print(f"  run {i + 1}: bare pg_restore {bare_r[-1]:6.2f} s, restore job {ours_r[-1]:6.2f} s, "
              f"maintenance window {windows[-1]:.3f} s", flush=True)
    rss = peak.end()
    console.stop()
    points.append(dict(
        scale=scale, db=db_bytes,
        dump=statistics.median(b[0] for b in bare), dump_size=bare[0][1],
        backup=statistics.median(o[0] for o in ours), backup_size=ours[0][1],
        pg_restore=statistics.median(bare_r), restore=statistics.median(ours_r),
        window=max(windows), rss=rss))

print()
if levels:
    print("pg_dump's gzip levels (bare `pg_dump -Fc -Z<level>`, median time; size; against level 6, "
          "pg_dump's default):")
    print()
    print("| database | level | time | archive | time / level 6 | size / level 6 |")
    print("|---|---|---|---|---|---|")
    for scale in LEVEL_SCALES:
        db = next(p["db"] for p in points if p["scale"] == scale)
        t6, s6 = levels[(scale, 6)]
        for level in LEVELS:
            t, s = levels[(scale, level)]
            print(f"| scale {scale}, {mb(db)} | {level} | {t:.2f} s | {mb(s)} | {t / t6:.2f} | {s / s6:.2f} |")
    print()

print(f"Backup job (its default BACKUP_COMPRESSION: its archives say level {', '.join(sorted(used))}; verified while dumping) against bare `pg_dump -Fc` "
      f"(its default compression):")
print()
print("| database | bare pg_dump -Fc | backup job | time ratio | archive: bare / job | size ratio |")
print("|---|---|---|---|---|---|")
for p in points:
    print(f"| scale {p['scale']}, {mb(p['db'])} | {p['dump']:.2f} s | {p['backup']:.2f} s | "
          f"**{p['backup'] / p['dump']:.2f}** (target <= 1.00) | {mb(p['dump_size'])} / {mb(p['backup_size'])} | "
          f"{p['backup_size'] / p['dump_size']:.2f} (target <= 1.15) |")
print()
print(f"Restore job against bare `pg_restore --jobs={JOBS}` of the same archive:")
print()
print("| database | bare pg_restore | restore job | ratio | maintenance window (longest) | server RSS peak |")
print("|---|---|---|---|---|---|")
for p in points:
    print(f"| scale {p['scale']}, {mb(p['db'])} | {p['pg_restore']:.2f} s | {p['restore']:.2f} s | "
          f"**{p['restore'] / p['pg_restore']:.2f}** (target <= 1.10) | {p['window']:.3f} s (target <= 0.1) | "
          f"{p['rss']:.0f} MB |")


def chart(path):
    """Time against database size, backup and restore side by side."""
    w, h, pad = 360, 260, 48

    def nice(top):
        """A round axis end and its step (1, 2 or 5 times a power of ten), four or five steps."""
        for magnitude in (10 ** e for e in range(-2, 6)):
            for step in (1 * magnitude, 2 * magnitude, 5 * magnitude):
                if top / step <= 5:
                    return step * -(-top // step), step
        return top, top / 4

    xmax, xstep = nice(max(p["db"] for p in points) / 1048576)

    def panel(x0, title, series):
        ymax, ystep = nice(max(max(p[k] for p in points) for k, _, _ in series))
        sx = lambda v: x0 + pad + v / xmax * (w - pad - 12)  # noqa: E731
        sy = lambda v: h - pad + 8 - v / ymax * (h - pad - 28)  # noqa: E731
        out = [f'<text x="{x0 + w / 2}" y="16" text-anchor="middle" font-weight="600">{title}</text>',
               f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(xmax)}" y2="{sy(0)}" stroke="#555"/>',
               f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(0)}" y2="{sy(ymax)}" stroke="#555"/>']
        for i in range(int(round(ymax / ystep)) + 1):
            yv = ystep * i
            out.append(f'<text x="{sx(0) - 6}" y="{sy(yv) + 4}" text-anchor="end" font-size="10">{yv:g} s</text>')
            if i:
                out.insert(0, f'<line x1="{sx(0)}" y1="{sy(yv)}" x2="{sx(xmax)}" y2="{sy(yv)}" stroke="#eee"/>')
        for i in range(int(round(xmax / xstep)) + 1):
            xv = xstep * i
            out.append(f'<text x="{sx(xv)}" y="{sy(0) + 14}" text-anchor="middle" font-size="10">{xv:g}</text>')
        out.append(f'<text x="{x0 + w / 2}" y="{h - 6}" text-anchor="middle" font-size="11">database size (MB)</text>')
        for n, (key, label, colour) in enumerate(series):
            pts = " ".join(f"{sx(p['db'] / 1048576):.1f},{sy(p[key]):.1f}" for p in points)
            dash = ' stroke-dasharray="5 4"' if key in ("dump", "pg_restore") else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            out.extend(f'<circle cx="{sx(p["db"] / 1048576):.1f}" cy="{sy(p[key]):.1f}" r="3" fill="{colour}"/>'
                       for p in points)
            out.append(f'<text x="{sx(0) + 8}" y="{38 + 14 * n}" font-size="11" fill="{colour}">{label}</text>')
        return out

    body = panel(0, "Backup", [("dump", "bare pg_dump -Fc (not verified)", "#888"),
                               ("backup", "backup job (verified)", "#1f6feb")])
    body += panel(w + 20, "Restore", [("pg_restore", f"bare pg_restore --jobs={JOBS}", "#888"),
                                      ("restore", "restore job (checked, switched)", "#c2410c")])
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w + 20}" height="{h}" '
           f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="#fff"/>\n'
           + "\n".join(body) + "\n</svg>\n")
    with open(path, "w") as f:
        f.write(svg)
    print(f"\nchart written to {path}")


if CHART:
    chart(CHART)
# With BENCH_LOG set, the servers' log (each phase's time) is kept.
if "BENCH_LOG" not in os.environ:
    subprocess.run(["rm", "-rf", bench.work])

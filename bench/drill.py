"""Restore drill benchmark: the drill job (restore into a scratch database,
fingerprint comparison, migrations, smoke queries, drop) against a bare
`pg_restore` of the same archive into an empty database with the same number
of parallel jobs, at two database sizes; and the recovery time the product
reports for each.

Run through scripts/bench.sh (BENCH_ONLY=drill), which builds the release
binary and provides a throwaway PostgreSQL. Prints figures and ratios; it
passes or fails nothing.
"""

import os
import statistics

from harness import RUNS, Bench, Console, mb

PG_RESTORE = os.environ["BENCH_PG_RESTORE"]
SCALES = [int(s) for s in os.environ.get("BENCH_DRILL_SCALES", "10,40").split(",")]
JOBS = max(1, min(4, os.cpu_count() or 1))

bench = Bench("drill")
run, psql, control = bench.run, bench.psql, bench.control
backups = bench.backups


def bare_restore(archive):
    return bench.bare_restore(PG_RESTORE, archive, JOBS, "bench_bare_drill")


def drill(console, backup_id):
    """A drill of the backup: the job's own time, and the recovery time it reports."""
    job, elapsed = console.follow(console.call("POST", "/api/admin/backup/drill", {"backup_id": int(backup_id)}))
    reported = int(control(f"SELECT duration_ms FROM restore_drills WHERE job_id = '{job['id']}'"))
    return elapsed, reported / 1000


print(f"pg_restore --jobs={JOBS}; {RUNS} runs each, alternating order", flush=True)
summary = []
for scale in SCALES:
    psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    run("migrate")
    run("demo", "seed", "--scale", str(scale))
    # As the cost-curve bench does: the fresh rows vacuumed and analysed now,
    # so autovacuum does not start on them during the first runs.
    psql("VACUUM ANALYZE")
    db_bytes = int(psql("SELECT pg_database_size(current_database())"))
    run("backup", "create", "--notes", f"drill bench scale {scale}")
    console = Console(bench)
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
                t, r = drill(console, backup_id)
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

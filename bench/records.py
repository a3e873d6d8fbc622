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
import os
import statistics
import time

from harness import RUNS, Bench, Console, mb

SCALES = [int(s) for s in os.environ.get("BENCH_RECORDS_SCALES", "1,40").split(",")]

bench = Bench("records")
run, psql, control = bench.run, bench.psql, bench.control


def job(console, started):
    """A job's own time (see Console.follow)."""
    return console.follow(started)[1]


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
        list(pool.map(lambda db: psql(sql, db), [bench.database(), copy]))
    return time.monotonic() - start


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
    console = Console(bench)
    preview, compare, fingerprint, plan_t, recover_t, undo_t = [], [], [], [], [], []
    rows = 0
    for i in range(RUNS):
        preview.append(job(console, console.call("POST", f"/api/admin/backup/{backup_id}/preview")))
        compare.append(int(control("SELECT compare_ms FROM prepared_copies")) / 1000)
        copy = control("SELECT database_name FROM prepared_copies")
        fingerprint.append(fingerprint_both(copy))
        start = time.monotonic()
        plan = console.call("POST", "/api/admin/backup/recover/plan", {"table": "courses", "key": course})
        plan_t.append(time.monotonic() - start)
        rows = sum(t["insert"] for t in plan["tables"])
        recover_t.append(job(console, console.call(
            "POST", "/api/admin/backup/recover",
            {"table": "courses", "key": course, "confirm": True, "expect_rows": rows})))
        undo_t.append(job(console, console.call("POST", "/api/admin/backup/recover/undo", {"confirm": True})))
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

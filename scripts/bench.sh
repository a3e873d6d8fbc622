#!/usr/bin/env bash
# Benchmarks (not tests): prints figures and ratios, asserts nothing.
#   scripts/bench.sh   backup job vs bare pg_dump, restore job vs bare pg_restore,
#                      maintenance window at two sizes, and a large download
#                      (bench/backup.py); then a backup job under the load of 50
#                      polling sessions over a 5,000-entry catalog, and sign-in
#                      timings (bench/load.py)
#   BENCH_ONLY=scheduler: the scheduler's idle cost with 0 and 10 schedules, and
#                      the time from a due time to pg_dump's start (bench/scheduler.py)
#   BENCH_ONLY=offsite: the backup job local only, with its off-site copy and with
#                      that copy encrypted, against boto3's upload_file of the same
#                      archive to the same S3 server, and peak RSS (bench/offsite.py)
#   BENCH_ONLY=drill:  the restore drill job against a bare pg_restore of the same
#                      archive at two sizes, and the recovery time it reports
#                      (bench/drill.py; BENCH_DRILL_SCALES, default 10,40)
#   BENCH_ONLY=records: Preview changes (the job, and its comparison against one
#                      fingerprint of both sides) and the recovery of a deleted
#                      course (plan, job, undo) at two sizes (bench/records.py;
#                      BENCH_RECORDS_SCALES, default 1,40)
#   BENCH_ONLY=curve:  the cost curve: backup job vs bare pg_dump -Fc and restore job vs
#                      bare pg_restore at three sizes (BENCH_CURVE_SCALES, default
#                      4,40,100: about 30 MB to 730 MB), with the maintenance window and
#                      the server's peak RSS at each; pg_dump's gzip levels at two of
#                      them (BENCH_LEVEL_SCALES, default 4,40); the chart of time
#                      against size written to BENCH_CHART (default
#                      docs/benchmarks/cost-curve.svg) (bench/curve.py)
#   BENCH_ONLY=page:   the console's page weight (each bundle file raw, gzip, brotli, as
#                      sent) and the time to a hydrated console from a cold cache in
#                      Chromium (bench/page.py, bench/page.mjs)
# BENCH_ONLY=backup, load, scheduler, offsite, drill, records, curve or page runs one of them (default: backup and load).
# offsite.py: BENCH_OFFSITE_MB (550), BENCH_OFFSITE_RUNS (3), BENCH_S3 (moto, or
#          s3s-fs: a Rust S3 server storing files, built once from crates.io).
# backup.py: BENCH_SCALE (default 40, about 290 MB), BENCH_RUNS (3), BENCH_DOWNLOAD_MB (520).
# load.py: BENCH_LOAD_SCALE (10), BENCH_LOAD_RUNS (3), BENCH_LOAD_SESSIONS (50),
#          BENCH_LOAD_INTERVAL (1 s between a session's polls; 0 for a closed loop).
# BENCH_LOG (the server's RUST_LOG, default warn).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
BENCH_ONLY="${BENCH_ONLY:-}"
case "$BENCH_ONLY" in
  ""|backup|load|scheduler|offsite|drill|records|curve|page) ;;
  *) die "BENCH_ONLY is backup, load, scheduler, offsite, drill, records, curve or page (or unset for backup and load), not '$BENCH_ONLY'" ;;
esac
build_release
throwaway_cluster
if [ "$BENCH_ONLY" = offsite ]; then
  command -v age-keygen >/dev/null || apt_install age
  throwaway_s3
  # BENCH_S3=s3s-fs: the same bench against s3s-fs instead of moto.
  if [ "${BENCH_S3:-moto}" = s3s-fs ]; then throwaway_s3s_fs; fi
  export S3_VENV
  su_psql -c 'CREATE DATABASE lms_offsite OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_offsite"
  "$LMS_ADMIN_BIN" migrate >/dev/null
  # Not exec: the exit trap stops the cluster and the S3 server.
  python3 "$ROOT/bench/offsite.py"
  exit
fi
if [ "$BENCH_ONLY" = drill ]; then
  su_psql -c 'CREATE DATABASE lms_drill OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_drill" BENCH_PG_RESTORE="$PG_BIN/pg_restore"
  python3 "$ROOT/bench/drill.py"
  exit
fi
if [ "$BENCH_ONLY" = records ]; then
  su_psql -c 'CREATE DATABASE lms_records OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_records"
  python3 "$ROOT/bench/records.py"
  exit
fi
if [ "$BENCH_ONLY" = curve ]; then
  su_psql -c 'CREATE DATABASE lms_curve OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_curve"
  export BENCH_PG_DUMP="$PG_BIN/pg_dump" BENCH_PG_RESTORE="$PG_BIN/pg_restore"
  export BENCH_CHART="${BENCH_CHART:-$ROOT/docs/benchmarks/cost-curve.svg}"
  mkdir -p "$(dirname "$BENCH_CHART")"
  python3 "$ROOT/bench/curve.py"
  exit
fi
if [ "$BENCH_ONLY" = page ]; then
  command -v chromium >/dev/null || apt_install chromium
  su_psql -c 'CREATE DATABASE lms_page OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_page"
  "$LMS_ADMIN_BIN" migrate >/dev/null
  python3 "$ROOT/bench/page.py"
  exit
fi
if [ "$BENCH_ONLY" = scheduler ]; then
  su_psql -c 'CREATE DATABASE lms_sched OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_sched" BENCH_PG_DUMP="$PG_BIN/pg_dump"
  python3 "$ROOT/bench/scheduler.py"
  exit
fi
if [ "$BENCH_ONLY" != load ]; then
  export DATABASE_URL="$APP_URL_BASE/lms_e2e"
  export BENCH_PG_DUMP="$PG_BIN/pg_dump" BENCH_PG_RESTORE="$PG_BIN/pg_restore"
  "$LMS_ADMIN_BIN" migrate >/dev/null
  python3 "$ROOT/bench/backup.py"
fi
if [ "$BENCH_ONLY" != backup ]; then
  # A database of its own: backup.py leaves lms_e2e seeded at another scale.
  su_psql -c 'CREATE DATABASE lms_load OWNER lms_test'
  export DATABASE_URL="$APP_URL_BASE/lms_load"
  "$LMS_ADMIN_BIN" migrate >/dev/null
  if [ -z "$BENCH_ONLY" ]; then echo; fi
  python3 "$ROOT/bench/load.py"
fi

#!/usr/bin/env bash
# Benchmarks (not tests): prints figures and ratios, asserts nothing.
#   scripts/bench.sh   backup job vs bare pg_dump, restore job vs bare pg_restore,
#                      maintenance window at two sizes, and a large download
# BENCH_SCALE (default 40, about 290 MB), BENCH_RUNS (3), BENCH_DOWNLOAD_MB (520),
# BENCH_LOG (the server's RUST_LOG, default warn).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
build_release
throwaway_cluster
export DATABASE_URL="$APP_URL_BASE/lms_e2e"
export BENCH_PG_DUMP="$PG_BIN/pg_dump" BENCH_PG_RESTORE="$PG_BIN/pg_restore"
"$LMS_ADMIN_BIN" migrate >/dev/null
python3 "$ROOT/bench/backup.py"

#!/usr/bin/env bash
# Runs every test: formatting, clippy (server and browser builds), unit and
# integration tests against a throwaway PostgreSQL, then the Playwright suite
# in Chromium against the release binary. Exits non-zero on any failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_build_tools
command -v chromium >/dev/null || apt_install chromium
command -v curl >/dev/null || apt_install curl
# The standard age tool: encrypted backups must open with it alone.
command -v age >/dev/null || apt_install age

log "checking formatting"
cargo fmt --all --check

log "clippy (server build)"
cargo clippy --workspace --exclude frontend --all-targets --features lms-backup/testing -- -D warnings
log "clippy (browser build)"
cargo clippy -p frontend -p app --features app/hydrate --target wasm32-unknown-unknown -- -D warnings

# A throwaway cluster for this run only.
throwaway_cluster
throwaway_tls
throwaway_s3
throwaway_smtp
export TEST_DATABASE_URL="$APP_URL_BASE/postgres" TEST_SUPERUSER_URL="$PG_SUPERUSER_URL"
export TEST_TLS_URL_BASE="$TLS_URL_BASE" TEST_TLS_DIR="$TLS_DIR"
# The tests' scratch files (backup directories, fake tools, private
# clusters) go inside the throwaway directory, so they go with it at exit.
export TMPDIR="$THROWAWAY/tmp"
mkdir -m 1777 "$TMPDIR"

log "unit and integration tests"
cargo test --workspace --exclude frontend --features lms-backup/testing 2>&1 | tee "$THROWAWAY/cargo-test.log"
cargo_summary="$(grep -E '^test result:' "$THROWAWAY/cargo-test.log" \
  | awk '{p+=$4; f+=$6} END {printf "cargo test: %d passed, %d failed", p, f}')"

build_release

log "end-to-end tests (Playwright, Chromium)"
export DATABASE_URL="$APP_URL_BASE/lms_e2e"
export BACKUP_DIR="$THROWAWAY/backups" BACKUP_RATE_LIMIT=0
# Drills only when a test asks: a scheduled one would hold the lock under
# another test (the schedule itself is tested against the engine).
export DRILL_INTERVAL_HOURS=0
mkdir -m 750 "$BACKUP_DIR"
# A cap the browser-side size check can be shown against with a sparse file,
# above the archive of the demo database with the progress test's ballast.
export MAX_BACKUP_SIZE=512MiB
export E2E_ADMIN_PASSWORD="$(random_password)" E2E_INSTRUCTOR_PASSWORD="$(random_password)"
"$LMS_ADMIN_BIN" migrate
# Large enough (over 100 MB) for a backup whose progress can be watched.
"$LMS_ADMIN_BIN" demo seed --scale 20
printf '%s\n' "$E2E_ADMIN_PASSWORD" | "$LMS_ADMIN_BIN" user create --username e2e-admin --role admin --full-name "E2E Admin" --password-stdin
printf '%s\n' "$E2E_INSTRUCTOR_PASSWORD" | "$LMS_ADMIN_BIN" user create --username e2e-instructor --role instructor --password-stdin
E2E_PORT="$(free_port)"
export E2E_BASE_URL="http://127.0.0.1:$E2E_PORT"
# Run the binary from an empty directory: it must need nothing beside itself.
E2E_CWD="$(mktemp -d)"
(cd "$E2E_CWD" && exec "$LMS_ADMIN_BIN" serve --listen "127.0.0.1:$E2E_PORT") > "$THROWAWAY/server.log" 2>&1 &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
wait_for_http "$E2E_BASE_URL/login" 60 || { cat "$THROWAWAY/server.log" >&2; die "the server did not come up"; }
# A second instance on the same databases and backup directory, as behind a
# load balancer: its console must show what the first one runs.
E2E_SECOND_PORT="$(free_port)"
export E2E_SECOND_URL="http://127.0.0.1:$E2E_SECOND_PORT"
(cd "$E2E_CWD" && exec "$LMS_ADMIN_BIN" serve --listen "127.0.0.1:$E2E_SECOND_PORT") > "$THROWAWAY/server2.log" 2>&1 &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
wait_for_http "$E2E_SECOND_URL/login" 60 || { cat "$THROWAWAY/server2.log" >&2; die "the second server did not come up"; }
# A third with the hourly limit on manual backups, for the console's notice
# of when the next one is possible.
E2E_LIMITED_PORT="$(free_port)"
export E2E_LIMITED_URL="http://127.0.0.1:$E2E_LIMITED_PORT"
(cd "$E2E_CWD" && BACKUP_RATE_LIMIT=1 exec "$LMS_ADMIN_BIN" serve --listen "127.0.0.1:$E2E_LIMITED_PORT") > "$THROWAWAY/server3.log" 2>&1 &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
wait_for_http "$E2E_LIMITED_URL/login" 60 || { cat "$THROWAWAY/server3.log" >&2; die "the third server did not come up"; }
# A fourth on a database and backup directory of its own, copying off-site
# to a bucket that does not exist (yet): a failed copy and its reason. Its
# settings go through the environment of a subshell, never argv.
su_psql >/dev/null <<< "CREATE DATABASE lms_e2e_offsite OWNER lms_test"
mkdir -m 750 "$THROWAWAY/backups-offsite"
E2E_OFFSITE_BUCKET="e2e-offsite-$(random_password | tr 'A-Z' 'a-z')"
OFFSITE_SECRET="$(random_password)"
offsite_env() {
  export DATABASE_URL="$APP_URL_BASE/lms_e2e_offsite" BACKUP_DIR="$THROWAWAY/backups-offsite"
  export S3_ENDPOINT="$TEST_S3_ENDPOINT" S3_BUCKET="$E2E_OFFSITE_BUCKET" S3_PREFIX=lms
  export S3_FORCE_PATH_STYLE=true AWS_ACCESS_KEY_ID=e2e-access-key AWS_SECRET_ACCESS_KEY="$OFFSITE_SECRET"
}
(offsite_env && "$LMS_ADMIN_BIN" demo seed --scale 1)
printf '%s\n' "$E2E_ADMIN_PASSWORD" | (offsite_env && "$LMS_ADMIN_BIN" user create --username e2e-admin --role admin --full-name "E2E Admin" --password-stdin)
E2E_OFFSITE_PORT="$(free_port)"
export E2E_OFFSITE_URL="http://127.0.0.1:$E2E_OFFSITE_PORT" E2E_OFFSITE_BUCKET
(offsite_env && cd "$E2E_CWD" && exec "$LMS_ADMIN_BIN" serve --listen "127.0.0.1:$E2E_OFFSITE_PORT") > "$THROWAWAY/server4.log" 2>&1 &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
wait_for_http "$E2E_OFFSITE_URL/login" 60 || { cat "$THROWAWAY/server4.log" >&2; die "the off-site server did not come up"; }
set +e
(cd end2end && npx playwright test) 2>&1 | tee "$THROWAWAY/playwright.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "---- last lines of the server's log ----" >&2
  tail -n 60 "$THROWAWAY/server.log" >&2
  echo "---- last lines of the second server's log ----" >&2
  tail -n 20 "$THROWAWAY/server2.log" >&2
  echo "---- panics and errors anywhere in the servers' logs ----" >&2
  grep -hE "panicked|ERROR" "$THROWAWAY"/server*.log | grep -v "tower_http" | tail -n 20 >&2
  # Last, so that whoever reads only the end of the output sees what failed.
  echo "---- what failed in the browser tests ----" >&2
  grep -E '^ +[0-9]+\) |^ +(Error|Expected|Received|Timeout|Call log)|^ +[0-9]+ (failed|flaky|passed)|✘' \
    "$THROWAWAY/playwright.log" | head -n 80 >&2
fi
set -e
echo "$cargo_summary"
exit $status

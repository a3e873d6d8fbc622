#!/usr/bin/env bash
# Runs LMS Admin on this machine: installs what is missing, brings up a
# private PostgreSQL (unless DATABASE_URL is set), builds the release binary,
# migrates, seeds demo data and a first administrator on the first run, and
# serves on http://127.0.0.1:3000 (LISTEN_ADDR to change).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATA="$ROOT/.data"
mkdir -p "$DATA"

if [ -z "${DATABASE_URL:-}" ]; then
  start_cluster "$DATA/postgres" "${LMS_PG_PORT:-5433}"
  if [ ! -f "$DATA/app.password" ]; then
    (umask 077; random_password > "$DATA/app.password")
  fi
  ensure_app_role lms_admin "$(cat "$DATA/app.password")" lms
  export DATABASE_URL="postgres://lms_admin:$(cat "$DATA/app.password")@127.0.0.1:${LMS_PG_PORT:-5433}/lms"
fi

# The server never creates a missing backup directory (it may be the mount
# point of a disk that is not mounted): this script makes its own default,
# ./backups in the checkout, and leaves a BACKUP_DIR given to it alone.
if [ -z "${BACKUP_DIR:-}" ]; then
  export BACKUP_DIR="$ROOT/backups"
  mkdir -p -m 750 "$BACKUP_DIR"
fi

build_release

log "migrating"
"$LMS_ADMIN_BIN" migrate
if [ ! -f "$DATA/seeded" ]; then
  log "seeding demo data"
  "$LMS_ADMIN_BIN" demo seed --scale "${DEMO_SCALE:-1}"
  touch "$DATA/seeded"
fi
if [ ! -f "$DATA/admin-created" ]; then
  password="$(random_password)"
  if printf '%s\n' "$password" | "$LMS_ADMIN_BIN" user create --username admin --role admin \
       --full-name "Administrator" --password-stdin; then
    cat <<MSG

  ┌──────────────────────────────────────────────────────────────┐
    First administrator (shown once; keep it somewhere safe):
      username: admin
      password: $password
    Another admin: lms-admin user create --username NAME --role admin --password-stdin
  └──────────────────────────────────────────────────────────────┘

MSG
  else
    log "an 'admin' account already exists; keeping it"
  fi
  touch "$DATA/admin-created"
fi

log "serving LMS Admin on http://${LISTEN_ADDR:-127.0.0.1:3000} (Ctrl-C to stop)"
exec "$LMS_ADMIN_BIN" serve

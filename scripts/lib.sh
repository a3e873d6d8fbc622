# Shared by run.sh, test.sh and build.sh: install what is missing, build,
# and bring up a private PostgreSQL cluster. Sourced, not run.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
# Compiled artefacts live outside the checkout so that fresh clones (CI)
# reuse them; override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lms-admin/target}"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  command -v apt-get >/dev/null || die "please install: $*"
  log "installing $* (Debian packages)"
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The wasm-bindgen CLI must equal the wasm-bindgen crate in Cargo.lock.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_build_tools() {
  command -v cargo >/dev/null || die "Rust is not installed (https://rustup.rs)"
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 10 minutes, once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  local wbv; wbv="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbv" ]; then
    log "installing wasm-bindgen-cli $wbv"
    cargo install wasm-bindgen-cli --version "$wbv" --force
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] || [ ! -x "$ROOT/node_modules/.bin/playwright" ] \
     || [ "$ROOT/package.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    log "installing npm packages (wasm-opt, Playwright)"
    (cd "$ROOT" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_postgres_server() {
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  export PG_BIN
}

# Runs a PostgreSQL server program as the cluster's owner (initdb and
# postgres refuse to run as root).
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_cluster DIR PORT: creates (first time) and starts a private cluster
# listening on 127.0.0.1:PORT only, with a password-protected superuser
# "postgres". Sets PG_SUPERUSER_URL.
start_cluster() {
  local dir="$1" port="$2"
  ensure_postgres_server
  mkdir -p "$dir"
  local pwfile="$dir/superuser.password" data="$dir/data"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in $data"
    umask 077
    head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$pwfile"
    umask 022
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$data"
      chmod 700 "$data"
      install -o postgres -m 600 "$pwfile" "$data.pw"
    else
      cp "$pwfile" "$data.pw"
    fi
    pg_as_owner "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$data.pw" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$data.pw"
  fi
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$port"
    local logfile="$dir/postgres.log"
    touch "$logfile"; [ "$(id -u)" -eq 0 ] && chown postgres "$logfile"
    pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=''" >/dev/null \
      || { tail -n 20 "$logfile" >&2; die "PostgreSQL did not start (log: $logfile)"; }
  fi
  PG_SUPERUSER_URL="postgres://postgres:$(cat "$pwfile")@127.0.0.1:$port/postgres"
}

stop_cluster() {
  local dir="$1"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# psql as the cluster superuser, with the password in the environment
# rather than on the command line.
su_psql() {
  local url="$PG_SUPERUSER_URL"
  PGPASSWORD="$(sed -E 's#^postgres://[^:]+:([^@]+)@.*#\1#' <<<"$url")" \
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(sed -E 's#.*:([0-9]+)/.*#\1#' <<<"$url")" \
    -U postgres -d postgres "$@"
}

# ensure_app_role ROLE PASSWORD DB: a non-superuser role that may create
# databases and owns DB (what restores need), and may read the server's
# settings (so a restore can check the data directory's free space); and
# ROLE_restore, the role restores build their copy as: it logs in (with a
# password the application sets for each restore) and has no other right,
# and ROLE is a member of it.
ensure_app_role() {
  local role="$1" password="$2" db="$3"
  su_psql -v role="$role" -v pw="$password" -v db="$db" -v restore="${1}_restore" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB NOSUPERUSER PASSWORD %L', :'role', :'pw') \gexec
SELECT format('GRANT pg_read_all_settings TO %I', :'role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'restore')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'restore') \gexec
SELECT format('ALTER ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'restore') \gexec
SELECT format('GRANT %I TO %I', :'restore', :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

# Release build with the site compiled into the binary. The site is built
# first, then the server alone with `embed-site`, so the embedded files are
# the ones just built.
build_release() {
  ensure_build_tools
  cd "$ROOT"
  log "building the site (wasm, CSS, assets)"
  # With brotli and gzip copies of each asset, embedded beside it and sent
  # as they are (no compression per request).
  cargo leptos build --release --frontend-only --precompress
  log "building the lms-admin binary with the site embedded"
  cargo leptos build --release --server-only --bin-features embed-site
  LMS_ADMIN_BIN="$CARGO_TARGET_DIR/release/lms-admin"
  [ -x "$LMS_ADMIN_BIN" ] || die "the build did not produce $LMS_ADMIN_BIN"
  export LMS_ADMIN_BIN
}

# wait_for_http URL SECONDS
wait_for_http() {
  local url="$1" deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# throwaway_cluster: a PostgreSQL cluster in a new temporary directory,
# stopped and deleted when the calling script exits. Sets THROWAWAY (its
# directory), PG_PORT, PG_SUPERUSER_URL, and APP_URL_BASE
# (postgres://lms_test:…@127.0.0.1:PORT) for a non-superuser role with
# CREATEDB. Processes listed in CLEANUP_PIDS are killed first.
CLEANUP_PIDS=""
throwaway_cluster() {
  THROWAWAY="$(mktemp -d "${TMPDIR:-/tmp}/lms-admin-pg.XXXXXX")"
  chmod 755 "$THROWAWAY"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$THROWAWAY"; fi
  trap 'for p in $CLEANUP_PIDS; do kill "$p" 2>/dev/null || true; done; stop_cluster "$THROWAWAY"; rm -rf "$THROWAWAY"' EXIT
  PG_PORT="$(free_port)"
  start_cluster "$THROWAWAY" "$PG_PORT"
  local password; password="$(random_password)"
  ensure_app_role lms_test "$password" lms_e2e
  APP_URL_BASE="postgres://lms_test:$password@127.0.0.1:$PG_PORT"
}

# throwaway_tls: TLS on the throwaway cluster (call after throwaway_cluster),
# for the tests of connections that must be encrypted and verified. Makes a
# CA, a server certificate for 127.0.0.1 and localhost, and a role lms_tls
# that can connect only over TLS and with a client certificate from that CA
# (pg_hba: hostssl with clientcert=verify-full, hostnossl reject). Other
# roles connect as before; clients that prefer TLS now get it. Sets TLS_DIR
# (ca.crt, client.crt and client.key for lms_tls, and other-ca.crt, a CA that
# did not sign the server's certificate) and TLS_URL_BASE
# (postgres://lms_tls:…@127.0.0.1:PORT).
throwaway_tls() {
  command -v openssl >/dev/null || apt_install openssl
  TLS_DIR="$THROWAWAY/tls"
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ca() {
      key "$1.key"
      openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    }
    signed() { # NAME CN EXTENSION: a certificate for NAME.key signed by ca
      key "$1.key"
      openssl req -new -key "$1.key" -subj "/CN=$2" \
        | openssl x509 -req -CA ca.crt -CAkey ca.key -days 2 -out "$1.crt" 2>/dev/null \
          -extfile <(printf '%s\n' basicConstraints=critical,CA:FALSE "$3")
    }
    ca ca "lms-admin test CA"
    ca other-ca "another CA"
    signed server localhost "subjectAltName=IP:127.0.0.1,DNS:localhost"
    # clientcert=verify-full: the certificate's CN is the role's name.
    signed client lms_tls "extendedKeyUsage=clientAuth"
    chmod 644 ca.crt other-ca.crt client.crt
  )
  local data="$THROWAWAY/data" f
  for f in server.crt server.key ca.crt; do
    if [ "$(id -u)" -eq 0 ]; then
      install -o postgres -g postgres -m 600 "$TLS_DIR/$f" "$data/$f"
    else
      install -m 600 "$TLS_DIR/$f" "$data/$f"
    fi
  done
  # pg_hba.conf is read top-down: these lines go before initdb's.
  local hba; hba="$(cat "$data/pg_hba.conf")"
  printf '%s\n' "hostnossl all lms_tls all reject" \
    "hostssl all lms_tls 127.0.0.1/32 scram-sha-256 clientcert=verify-full" "$hba" > "$data/pg_hba.conf"
  su_psql >/dev/null <<'SQL'
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = 'server.crt';
ALTER SYSTEM SET ssl_key_file = 'server.key';
ALTER SYSTEM SET ssl_ca_file = 'ca.crt';
SELECT pg_reload_conf();
SQL
  # The reload is asynchronous: done once a new connection is encrypted.
  local deadline=$((SECONDS + 30))
  until [ "$(su_psql -tA -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')" = t ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL did not turn TLS on (log: $THROWAWAY/postgres.log)"
    sleep 0.1
  done
  local password; password="$(random_password)"
  ensure_app_role lms_tls "$password" lms_tls
  TLS_URL_BASE="postgres://lms_tls:$password@127.0.0.1:$PG_PORT"
}

# ensure_s3_tools: an S3-compatible server for the off-site tests (moto's,
# from PyPI) and boto3 (the benchmark's peer), in a virtual environment
# beside the build cache. Sets S3_VENV.
ensure_s3_tools() {
  S3_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/lms-admin/s3venv"
  if [ ! -x "$S3_VENV/bin/moto_server" ]; then
    log "installing an S3-compatible test server (moto) and boto3"
    python3 -m venv "$S3_VENV"
    "$S3_VENV/bin/pip" install -q "moto[server]==5.*" "boto3==1.*"
  fi
  if ! "$S3_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    log "installing an SMTP test server (aiosmtpd)"
    "$S3_VENV/bin/pip" install -q "aiosmtpd==1.*"
  fi
}

# wait_for_port PORT LOG WHAT: waits up to 30 s for a server to accept
# connections on the loopback PORT; else prints its LOG and stops.
wait_for_port() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$2" >&2; die "$3 did not come up"; }
    sleep 0.1
  done
}

# throwaway_smtp: an SMTP server on the loopback for this run only that
# keeps every message it gets in a maildir (call after throwaway_cluster).
# Sets TEST_SMTP_URL and TEST_SMTP_MAILDIR.
throwaway_smtp() {
  ensure_s3_tools
  local port; port="$(free_port)"
  TEST_SMTP_MAILDIR="$THROWAWAY/mail"
  "$S3_VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" \
    -c aiosmtpd.handlers.Mailbox "$TEST_SMTP_MAILDIR" > "$THROWAWAY/smtp.log" 2>&1 &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  TEST_SMTP_URL="smtp://127.0.0.1:$port"
  wait_for_port "$port" "$THROWAWAY/smtp.log" "the SMTP test server"
  export TEST_SMTP_URL TEST_SMTP_MAILDIR
  [ -n "${TLS_DIR:-}" ] && throwaway_smtp_tls
}

# throwaway_smtp_tls: a second SMTP server, as a real submission server is:
# STARTTLS required (the certificate of throwaway_tls, for 127.0.0.1) and
# a login and password required; its messages go to the same maildir.
# Sets TEST_SMTP_TLS_URL (smtp://notify:PASSWORD@127.0.0.1:PORT) and
# TEST_SMTP_TLS_CA.
throwaway_smtp_tls() {
  local port; port="$(free_port)"
  local password; password="$(random_password)"
  SINK_PORT="$port" SINK_PASSWORD="$password" SINK_MAILDIR="$TEST_SMTP_MAILDIR" \
    SINK_CERT="$TLS_DIR/server.crt" SINK_KEY="$TLS_DIR/server.key" \
    "$S3_VENV/bin/python" - > "$THROWAWAY/smtp-tls.log" 2>&1 <<'PY' &
import os, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(os.environ["SINK_CERT"], os.environ["SINK_KEY"])
password = os.environ["SINK_PASSWORD"].encode()

def check(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"notify" and auth_data.password == password
    return AuthResult(success=ok, handled=False)

Controller(Mailbox(os.environ["SINK_MAILDIR"]), hostname="127.0.0.1", port=int(os.environ["SINK_PORT"]),
           tls_context=context, require_starttls=True, authenticator=check, auth_required=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  local deadline=$((SECONDS + 30))
  until grep -q ready "$THROWAWAY/smtp-tls.log" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$THROWAWAY/smtp-tls.log" >&2; die "the TLS SMTP test server did not come up"; }
    sleep 0.1
  done
  TEST_SMTP_TLS_URL="smtp://notify:$password@127.0.0.1:$port"
  TEST_SMTP_TLS_CA="$TLS_DIR/ca.crt"
  export TEST_SMTP_TLS_URL TEST_SMTP_TLS_CA
}

# throwaway_s3: an S3-compatible server on the loopback for this run only
# (call after throwaway_cluster, whose exit trap stops it). Parts of a
# multipart upload may be as small as 64 KiB here, so tests can send many
# parts of small archives. Sets TEST_S3_ENDPOINT.
throwaway_s3() {
  ensure_s3_tools
  local port; port="$(free_port)"
  S3_UPLOAD_PART_MIN_SIZE=65536 "$S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
    > "$THROWAWAY/s3.log" 2>&1 &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  wait_for_http "$TEST_S3_ENDPOINT/moto-api/" 60 || { cat "$THROWAWAY/s3.log" >&2; die "the S3 test server did not come up"; }
  export TEST_S3_ENDPOINT
  throwaway_guarded_s3
}

# throwaway_s3s_fs: a second kind of S3-compatible server for the off-site
# bench (BENCH_S3=s3s-fs): s3s-fs, written in Rust and storing objects as
# files, so the server itself takes little of the cores the clients
# measured share (moto is Python). Built once from crates.io into the cache.
# It checks signatures against the bench's own throwaway key (bench/offsite.py
# signs with it; a key of a loopback server that lives for one bench run).
# Sets TEST_S3_ENDPOINT.
throwaway_s3s_fs() {
  local root="${XDG_CACHE_HOME:-$HOME/.cache}/lms-admin/s3s-fs"
  if [ ! -x "$root/bin/s3s-fs" ]; then
    log "building an S3-compatible bench server (s3s-fs, a few minutes once)"
    cargo install -q s3s-fs --version 0.14.1 --features binary --locked --root "$root"
  fi
  local port; port="$(free_port)"
  mkdir -p "$THROWAWAY/s3s-fs"
  "$root/bin/s3s-fs" --host 127.0.0.1 --port "$port" \
    --access-key bench-access-key --secret-key bench-secret-key \
    "$THROWAWAY/s3s-fs" > "$THROWAWAY/s3s-fs.log" 2>&1 &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  wait_for_port "$port" "$THROWAWAY/s3s-fs.log" "s3s-fs"
  export TEST_S3_ENDPOINT
}

# throwaway_guarded_s3: a second S3 test server that checks credentials as
# AWS does (signatures against IAM users): its first four requests, made
# here without credentials, create a user allowed s3:*, its access key and
# the bucket "guarded"; every request after them must be signed with that
# key. Sets TEST_S3_GUARDED_ENDPOINT, TEST_S3_GUARDED_KEY_ID and
# TEST_S3_GUARDED_SECRET (a throwaway key of a throwaway server).
throwaway_guarded_s3() {
  local port; port="$(free_port)"
  INITIAL_NO_AUTH_ACTION_COUNT=4 S3_UPLOAD_PART_MIN_SIZE=65536 "$S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
    > "$THROWAWAY/s3-guarded.log" 2>&1 &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  TEST_S3_GUARDED_ENDPOINT="http://127.0.0.1:$port"
  wait_for_http "$TEST_S3_GUARDED_ENDPOINT/moto-api/" 60 || { cat "$THROWAWAY/s3-guarded.log" >&2; die "the guarded S3 test server did not come up"; }
  local key
  key="$("$S3_VENV/bin/python" - "$TEST_S3_GUARDED_ENDPOINT" <<'PY'
import json, sys
import boto3
settings = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
                aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **settings)
iam.create_user(UserName="backups")
iam.put_user_policy(UserName="backups", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="backups")["AccessKey"]
boto3.client("s3", **settings).create_bucket(Bucket="guarded")
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
)" || die "could not create the guarded S3 server's user"
  TEST_S3_GUARDED_KEY_ID="${key%% *}"
  TEST_S3_GUARDED_SECRET="${key#* }"
  export TEST_S3_GUARDED_ENDPOINT TEST_S3_GUARDED_KEY_ID TEST_S3_GUARDED_SECRET
}

random_password() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20; }

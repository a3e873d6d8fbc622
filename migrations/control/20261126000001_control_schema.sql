-- The control database: what the console knows about its own work. It is never
-- inside a backup and never touched by a restore. Users are named by id *and* a
-- name snapshot, with no foreign key into the LMS database, because a restore
-- can replace or renumber the users table.

-- Every operation an administrator (or the scheduler) performs, with its outcome.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id    BIGINT,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    client_ip   TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    detail      TEXT
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

-- Long operations (backup, restore, undo, upload verification, cleanup).
CREATE TABLE jobs (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('backup', 'restore', 'undo', 'upload', 'cleanup')),
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
    phase           TEXT NOT NULL DEFAULT '',
    progress        DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    message         TEXT,
    started_by_id   BIGINT,
    started_by_name TEXT NOT NULL,
    instance_id     TEXT NOT NULL,
    backup_id       BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC);

-- The backup catalog. A row reaches 'completed' only after the archive has been
-- fully read back, fsynced and renamed, and its manifest written.
CREATE TABLE backup_history (
    id              BIGSERIAL PRIMARY KEY,
    filename        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('manual', 'scheduled', 'uploaded', 'pre_restore')),
    status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'missing')),
    size_bytes      BIGINT,
    sha256          TEXT,
    manifest        JSONB,
    notes           TEXT,
    created_by_id   BIGINT,
    created_by_name TEXT NOT NULL,
    job_id          UUID REFERENCES jobs(id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ
);
CREATE INDEX backup_history_created_at_idx ON backup_history (created_at DESC);

-- The operation lock: a single lease row shared by every instance. A holder
-- renews heartbeat_at; a lease older than its timeout may be taken over.
CREATE TABLE operation_lock (
    id              SMALLINT PRIMARY KEY CHECK (id = 1),
    holder_instance TEXT NOT NULL,
    job_id          UUID REFERENCES jobs(id) ON DELETE SET NULL,
    operation_type  TEXT NOT NULL,
    locked_by_id    BIGINT,
    locked_by_name  TEXT NOT NULL,
    locked_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Instance-wide settings and flags (maintenance mode lives here so every
-- instance honours it).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

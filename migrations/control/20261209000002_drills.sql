-- Restore drills: a backup restored into a scratch database
-- (<db>_drill_<job>), checked against its manifest, migrated and queried,
-- then dropped. Each drill's outcome and measured recovery time is kept.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('backup', 'restore', 'undo', 'upload', 'cleanup', 'delete', 'drill'));

CREATE TABLE restore_drills (
    job_id UUID PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    -- No foreign key: a drill's record outlives its backup's deletion.
    backup_id BIGINT NOT NULL,
    backup_name TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The measured recovery time: archive checked, restored, compared,
    -- migrated and queried.
    duration_ms BIGINT NOT NULL,
    -- The LMS smoke queries' answers: {"users": n, "courses": n,
    -- "enrollments": n, "newest_activity_at": t}.
    smoke JSONB,
    error TEXT
);

CREATE INDEX restore_drills_backup ON restore_drills (backup_id, finished_at DESC);

-- Backups that happen by themselves. A schedule is a cron expression read in
-- an IANA zone; next_run_at is when it is next due (NULL while it is off).
-- An instance claims a due time by moving next_run_at on with a conditional
-- update, in the same transaction as the run's row, so each due time is
-- claimed once however many instances wake at that moment.
CREATE TABLE schedules (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 80),
    cron            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    notes_template  TEXT,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    -- The recovery point objective; NULL: twice the interval.
    rpo_seconds     BIGINT CHECK (rpo_seconds > 0),
    next_run_at     TIMESTAMPTZ,
    created_by_name TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (enabled = (next_run_at IS NOT NULL))
);

-- One row per due time a schedule reached: waiting for the lock, started
-- (its job says how it ended), skipped (could not start in time), or
-- missed (passed while no server ran; one catch-up run stands for them).
CREATE TABLE schedule_runs (
    id          BIGSERIAL PRIMARY KEY,
    schedule_id BIGINT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    due_at      TIMESTAMPTZ NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'started', 'skipped', 'missed')),
    job_id      UUID REFERENCES jobs(id) ON DELETE SET NULL,
    detail      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at  TIMESTAMPTZ,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX schedule_runs_waiting_idx ON schedule_runs (due_at) WHERE state = 'waiting';
CREATE INDEX schedule_runs_schedule_idx ON schedule_runs (schedule_id, due_at DESC);

-- Which schedule made a backup (retention is per schedule).
ALTER TABLE backup_history ADD COLUMN schedule_id BIGINT REFERENCES schedules(id) ON DELETE SET NULL;

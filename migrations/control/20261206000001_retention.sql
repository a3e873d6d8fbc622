-- Retention in grandfather-father-son form, per schedule: keep the last N,
-- plus the newest backup of each of the newest H hours, D days, W (ISO)
-- weeks, M months and Y years that have one, counted in the schedule's zone.
ALTER TABLE schedules
    ADD COLUMN keep_last    INTEGER NOT NULL DEFAULT 7  CHECK (keep_last BETWEEN 1 AND 10000),
    ADD COLUMN keep_hourly  INTEGER NOT NULL DEFAULT 0  CHECK (keep_hourly BETWEEN 0 AND 10000),
    ADD COLUMN keep_daily   INTEGER NOT NULL DEFAULT 14 CHECK (keep_daily BETWEEN 0 AND 10000),
    ADD COLUMN keep_weekly  INTEGER NOT NULL DEFAULT 8  CHECK (keep_weekly BETWEEN 0 AND 10000),
    ADD COLUMN keep_monthly INTEGER NOT NULL DEFAULT 12 CHECK (keep_monthly BETWEEN 0 AND 10000),
    ADD COLUMN keep_yearly  INTEGER NOT NULL DEFAULT 0  CHECK (keep_yearly BETWEEN 0 AND 10000);

-- A pinned backup is kept whatever retention says, until it is unpinned.
ALTER TABLE backup_history
    ADD COLUMN pinned_reason   TEXT CHECK (pinned_reason <> '' AND length(pinned_reason) <= 200),
    ADD COLUMN pinned_by_name  TEXT,
    ADD COLUMN pinned_at       TIMESTAMPTZ,
    ADD CONSTRAINT backup_history_pin_whole
        CHECK ((pinned_reason IS NULL) = (pinned_at IS NULL)
           AND (pinned_reason IS NULL) = (pinned_by_name IS NULL));

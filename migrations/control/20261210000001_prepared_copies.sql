-- Preview changes and record recovery: a backup restored into a prepared
-- copy (<db>_prepared_<job>) that is kept for review, compared with the live
-- database, and from which deleted records can be brought back.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('backup', 'restore', 'undo', 'upload', 'cleanup', 'delete', 'drill',
                    'preview', 'recover', 'recover_undo', 'recover_plan', 'discard'));

-- One prepared copy at a time.
CREATE TABLE prepared_copies (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    database_name TEXT NOT NULL UNIQUE,
    job_id UUID NOT NULL,
    -- No foreign key: the copy outlives its backup's deletion, and says so.
    backup_id BIGINT NOT NULL,
    backup_name TEXT NOT NULL,
    prepared_by TEXT NOT NULL,
    prepared_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Dropped once unused for PREPARED_COPY_IDLE_TIMEOUT.
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The comparison with the live database (lms_types::records::TableDiff[]).
    diff JSONB,
    compared_at TIMESTAMPTZ,
    compare_ms BIGINT
);

-- Each record recovery: the rows it inserted, kept so that undo deletes
-- exactly those (and refuses when one changed since).
CREATE TABLE record_recoveries (
    job_id UUID PRIMARY KEY,
    backup_id BIGINT NOT NULL,
    backup_name TEXT NOT NULL,
    root_table TEXT NOT NULL,
    root TEXT NOT NULL,
    -- [{"schema", "name", "key": [columns], "rows": [row as JSON, ...]}]
    -- in insertion order.
    inserted JSONB NOT NULL,
    -- 'applying' until the live transaction committed, then 'applied';
    -- 'undone' once deleted again.
    state TEXT NOT NULL CHECK (state IN ('applying', 'applied', 'failed', 'undone')),
    recovered_by TEXT NOT NULL,
    recovered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    undone_at TIMESTAMPTZ,
    undo_job_id UUID
);

CREATE INDEX record_recoveries_recent ON record_recoveries (recovered_at DESC);

-- Off-site copies: where each backup's copy on the configured target is.
-- NULL while no target is configured (or for entries that are not stored
-- backups); see lms_types::OffsiteState for the states.
ALTER TABLE backup_history
    ADD COLUMN offsite_state TEXT CHECK (offsite_state IN ('pending', 'copying', 'verified', 'failed', 'missing')),
    -- Why the last attempt failed (or when the copy was found missing), in words.
    ADD COLUMN offsite_error TEXT,
    ADD COLUMN offsite_verified_at TIMESTAMPTZ,
    ADD COLUMN offsite_attempts INT NOT NULL DEFAULT 0,
    -- When a failed or missing copy is tried again.
    ADD COLUMN offsite_next_attempt_at TIMESTAMPTZ;

CREATE INDEX backup_history_offsite_due ON backup_history (offsite_next_attempt_at)
    WHERE offsite_state IN ('pending', 'failed', 'missing');

-- A backup's job copies it off-site as its last phase.
ALTER TABLE jobs DROP CONSTRAINT jobs_phase_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_phase_check
    CHECK (phase IN ('starting', 'checking', 'dumping', 'verifying', 'saving', 'offsite',
                     'restoring', 'switching', 'deleting', 'done'));

-- Job phases are a fixed vocabulary shared with the console (lms-types'
-- Phase). Delete jobs used to record their kind ('delete') as their phase;
-- their phase is now 'deleting'. The constraint keeps the column to the
-- spellings the console knows.
UPDATE jobs SET phase = 'deleting' WHERE kind = 'delete' AND phase = 'delete';
UPDATE jobs SET phase = 'starting' WHERE phase = '';
ALTER TABLE jobs ALTER COLUMN phase SET DEFAULT 'starting';
ALTER TABLE jobs ADD CONSTRAINT jobs_phase_check
    CHECK (phase IN ('starting', 'checking', 'dumping', 'verifying', 'saving',
                     'restoring', 'switching', 'deleting', 'done'));

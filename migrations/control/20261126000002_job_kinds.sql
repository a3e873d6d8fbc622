-- Deleting a backup is a (short) job under the operation lock too.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check
    CHECK (kind IN ('backup', 'restore', 'undo', 'upload', 'cleanup', 'delete'));

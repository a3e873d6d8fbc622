-- The administrator accounts a backup's archive holds, read from the archive
-- the first time someone asks (the restore dialog, `lms-admin backup
-- restore`) and kept here, since a completed archive never changes: NULL
-- until then. A JSON array of {username, full_name, is_active,
-- password_tag}; password_tag is a digest of the password hash, never the
-- hash itself.
ALTER TABLE backup_history ADD COLUMN administrators JSONB;

-- An uploaded archive's file name on the uploader's machine, as the upload
-- dialog sent it: the catalog names every upload by the time it arrived, so
-- this is what tells the admin which file it was. NULL for backups taken
-- here and for uploads made before it was kept.
ALTER TABLE backup_history ADD COLUMN original_name TEXT;

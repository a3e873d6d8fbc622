-- What a job wants the administrator to know although it did not fail: a
-- check it could not make (the database server's free space cannot be
-- seen), a choice it made for them. Shown while it runs and with its
-- outcome.
ALTER TABLE jobs ADD COLUMN notes TEXT[] NOT NULL DEFAULT '{}';

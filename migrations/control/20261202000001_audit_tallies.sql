-- Refused attempts (failed sign-ins, non-administrators at the console) are
-- counted into one row per source and window instead of one row each, so a
-- stranger sending requests by the thousand cannot fill the log or push an
-- administrator's own entries out of sight.
--   tally_key    the source counted: a client address, a user
--   tally_window when its window began (the database server's clock)
--   tally_count  attempts in the window
--   tally_names  short hashes of the distinct names tried (capped)
ALTER TABLE audit_log
    ADD COLUMN tally_key    TEXT,
    ADD COLUMN tally_window TIMESTAMPTZ,
    ADD COLUMN tally_count  INTEGER NOT NULL DEFAULT 1,
    ADD COLUMN tally_names  TEXT[];
CREATE UNIQUE INDEX audit_log_tally_idx
    ON audit_log (action, outcome, tally_key, tally_window)
    WHERE tally_key IS NOT NULL;

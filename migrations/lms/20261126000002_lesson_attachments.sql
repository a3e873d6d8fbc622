-- Files attached to lessons (slides, worksheets): binary content, which is
-- what makes real LMS databases and their backups large.
CREATE TABLE lesson_attachments (
    id           BIGSERIAL PRIMARY KEY,
    lesson_id    BIGINT NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content      BYTEA NOT NULL,
    uploaded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX lesson_attachments_lesson_idx ON lesson_attachments (lesson_id);

-- The LMS data this console protects. Backups capture this database and
-- restores replace it whole, so nothing here may refer to the control database.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    email         TEXT NOT NULL UNIQUE,
    full_name     TEXT NOT NULL DEFAULT '',
    -- argon2 PHC string; '!' marks an account that cannot sign in (demo learners).
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'student')),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE courses (
    id            BIGSERIAL PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    instructor_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    is_published  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE lessons (
    id               BIGSERIAL PRIMARY KEY,
    course_id        BIGINT NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL DEFAULT '',
    duration_minutes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (course_id, position)
);

CREATE TABLE enrollments (
    id           BIGSERIAL PRIMARY KEY,
    course_id    BIGINT NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    enrolled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    progress     NUMERIC(5, 2) NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    completed_at TIMESTAMPTZ,
    UNIQUE (course_id, user_id)
);

-- Learning activity: the bulk of a real LMS database, and of the demo data at scale.
CREATE TABLE activity_events (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    lesson_id   BIGINT NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('viewed', 'completed', 'quiz_submitted', 'comment')),
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    details     JSONB NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX enrollments_user_idx ON enrollments (user_id);
CREATE INDEX activity_events_user_idx ON activity_events (user_id, occurred_at);

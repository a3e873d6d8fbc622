-- API tokens: what a deploy pipeline uses instead of a browser. Only the
-- SHA-256 of a token is kept (a token is 256 random bits, so a fast hash
-- is enough: there is nothing to guess). A revoked token keeps its row for
-- the record; its name can be given to a new token.
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    secret_sha256   BYTEA NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    scopes          TEXT[] NOT NULL CHECK (
                        cardinality(scopes) > 0
                        AND scopes <@ ARRAY['backup:create', 'backup:read', 'status:read']),
    created_by_name TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    revoked_by_name TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_by_name IS NULL)),
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (name) WHERE revoked_at IS NULL;

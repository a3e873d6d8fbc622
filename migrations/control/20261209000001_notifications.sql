-- Notifications: channels (e-mail, webhooks), and an outbox of events
-- written in the same transaction as the outcome each one reports, with one
-- delivery row per channel that wants it. Any instance delivers; a delivery
-- is claimed for a while, so two instances never send it at once, and is
-- retried with backoff until it is delivered. See lms_types::NotifyEvent.

CREATE TABLE notification_channels (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    -- Webhooks: the body they post.
    format TEXT NOT NULL DEFAULT 'generic' CHECK (format IN ('generic', 'slack', 'teams')),
    -- What the console shows of where it goes (recipients, the webhook's
    -- host), never a secret.
    shown_target TEXT NOT NULL,
    -- E-mail: the recipients and the sender.
    email_to TEXT[],
    email_from TEXT,
    -- The secrets of a channel made in the console (webhook URL and signing
    -- secret, SMTP URL with its password): write-only, never sent back.
    -- NULL for channels from the environment: each instance holds those.
    webhook_url TEXT,
    webhook_secret TEXT,
    smtp_url TEXT,
    events TEXT[] NOT NULL,
    -- Configured by environment: shown locked, not editable in the console.
    from_env BOOLEAN NOT NULL DEFAULT false,
    enabled BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- How its deliveries go: shown on the card.
    last_delivered_at TIMESTAMPTZ,
    failing_since TIMESTAMPTZ,
    consecutive_failures INT NOT NULL DEFAULT 0,
    last_error TEXT
);

CREATE TABLE notification_events (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    -- Set for events found by watching (an RPO breach, a stuck lock): the
    -- same situation is recorded once, however many instances see it.
    dedupe_key TEXT UNIQUE,
    -- What the message says (title, what happened, since when, what was
    -- done, what to do), rendered per channel at delivery.
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE notification_deliveries (
    event_id UUID NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The instance sending it, until when (then another may).
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    -- Given up after retrying for long enough (the channel shows it).
    abandoned_at TIMESTAMPTZ,
    -- The receiver's answer (status code, SMTP reply) or why it failed.
    answer TEXT,
    PRIMARY KEY (event_id, channel_id)
);

CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;

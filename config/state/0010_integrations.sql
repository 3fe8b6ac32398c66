-- Signals from Sentry and GitHub, and incidents sent on to an issue tracker.
--
-- alert_workflows gains where an alert came from and links back to it there.
ALTER TABLE alert_workflows
    ADD COLUMN source text NOT NULL DEFAULT 'alertmanager',
    ADD COLUMN links  jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Every verified delivery id a sender used, so a replay is answered as a duplicate.
CREATE TABLE webhook_deliveries (
    source       text NOT NULL,
    delivery_id  text NOT NULL,
    event        text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, delivery_id)
);

-- Append-only: deliveries refused for a bad or missing signature, staleness or a missing id.
CREATE TABLE webhook_rejections (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    delivery_id  text,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- One tracker issue per incident (fingerprint); a closed one stays as history.
CREATE TABLE tracker_issues (
    id           bigserial PRIMARY KEY,
    tracker      text NOT NULL,
    fingerprint  text NOT NULL,
    issue_key    text NOT NULL,
    issue_url    text,
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    title        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tracker_issues_open ON tracker_issues (tracker, fingerprint)
    WHERE state = 'open';

-- What is still to be told to the tracker, in order per fingerprint. A message whose retries
-- ran out is a dead letter: kept with its error, tried again at next_attempt_at.
CREATE TABLE tracker_outbox (
    id               bigserial PRIMARY KEY,
    tracker          text NOT NULL,
    fingerprint      text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('open', 'update', 'resolve')),
    title            text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead_letter', 'abandoned')),
    rounds           integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX tracker_outbox_due ON tracker_outbox (next_attempt_at)
    WHERE status IN ('pending', 'dead_letter');
CREATE INDEX tracker_outbox_fingerprint ON tracker_outbox (tracker, fingerprint, id);

-- A signed-in inbox session, so that signing out ends it on the server: the cookie is only
-- signed, and a copy of it kept from before the sign-out would otherwise work until it expires.
CREATE TABLE inbox_sessions (
    id          text PRIMARY KEY,
    principal   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz
);

CREATE INDEX inbox_sessions_created ON inbox_sessions (created_at);

-- Chat sessions and their messages: the conversation is the agent's memory.
CREATE TABLE chat_sessions (
    id         uuid PRIMARY KEY,
    principal  text NOT NULL,
    context    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_messages (
    id          bigserial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content     text NOT NULL,
    workflow_id text,
    approval_id uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX chat_messages_session ON chat_messages (session_id, id);

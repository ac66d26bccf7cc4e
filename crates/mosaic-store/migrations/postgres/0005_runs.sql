-- Runs: one agent turn loop each; at most one running per session.
ALTER TABLE agents ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';

-- The highest event number handed out for the session (numbers are reserved in blocks,
-- so they keep rising across restarts).
ALTER TABLE sessions ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    owner_user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    stop_reason        TEXT,
    error              TEXT,
    model_calls        BIGINT NOT NULL DEFAULT 0,
    input_tokens       BIGINT NOT NULL DEFAULT 0,
    output_tokens      BIGINT NOT NULL DEFAULT 0,
    cached_tokens      BIGINT NOT NULL DEFAULT 0,
    -- The answer streaming now, saved every few hundred milliseconds so that a crash
    -- keeps it, and the entry it will hang under.
    partial_text       TEXT NOT NULL DEFAULT '',
    partial_thinking   TEXT NOT NULL DEFAULT '',
    partial_parent_id  TEXT,
    partial_model      TEXT,
    started_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE INDEX runs_session ON runs(session_id, id);
CREATE UNIQUE INDEX runs_one_running ON runs(session_id) WHERE status = 'running';

-- Messages sent while a run was active, waiting for their turn.
CREATE TABLE queued_messages (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    owner_user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    delivery       TEXT NOT NULL,
    text           TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX queued_messages_session ON queued_messages(session_id, id);

-- The gateway's own recovery (runs cut off by a crash) acts as system.
ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
CREATE POLICY runs_own ON runs
    USING (owner_user_id = mosaic_uid() OR mosaic_is_system());

ALTER TABLE queued_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE queued_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY queued_messages_own ON queued_messages
    USING (owner_user_id = mosaic_uid() OR mosaic_is_system());

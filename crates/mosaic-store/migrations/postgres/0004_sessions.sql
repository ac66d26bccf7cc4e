-- Sessions: a user's conversations, each an append-only tree of entries.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    owner_user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id        TEXT REFERENCES agents(id) ON DELETE SET NULL,
    title           TEXT NOT NULL,
    -- The title lowercased by Mosaic (Unicode-aware; SQL lower() folds ASCII only).
    title_search    TEXT NOT NULL,
    active_leaf_id  TEXT,
    archived        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX sessions_owner ON sessions(owner_user_id, archived, id);

-- Entry ids are unique within their session, so an exported session imports back with
-- the same ids beside the original. `seq` is the order of appending.
CREATE TABLE session_entries (
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    parent_id    TEXT,
    seq          BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    search_text  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (session_id, id),
    UNIQUE (session_id, seq)
);
CREATE INDEX session_entries_parent ON session_entries(session_id, parent_id);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_own ON sessions USING (owner_user_id = mosaic_uid());

ALTER TABLE session_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY session_entries_own ON session_entries
    USING (session_id IN (SELECT id FROM sessions WHERE owner_user_id = mosaic_uid()));

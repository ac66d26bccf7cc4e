-- Memories: short things worth remembering, owned like the other brain items. Pinned
-- ones go into the context of their owner's runs (with agent_id: that agent's only).
-- Needs pgvector (the store checks for it, with instructions, before this runs).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE memories (
    id                TEXT PRIMARY KEY,
    text              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    tags              TEXT NOT NULL,
    importance        BIGINT NOT NULL,
    pinned            BIGINT NOT NULL DEFAULT 0,
    agent_id          TEXT REFERENCES agents(id) ON DELETE SET NULL,
    source_session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
    owner_user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id     TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    used_at           BIGINT,
    search            TSVECTOR NOT NULL DEFAULT ''::tsvector,
    embedding         vector,
    embedding_model   TEXT,
    embedding_dims    BIGINT,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX memories_user ON memories(owner_user_id, id);
CREATE INDEX memories_team ON memories(owner_team_id, id);
CREATE INDEX memories_pinned ON memories(owner_user_id, pinned) WHERE pinned = 1;
CREATE INDEX memories_search ON memories USING GIN (search);
CREATE INDEX memories_unembedded ON memories(id) WHERE embedding_model IS NULL;

-- Embeddings of tasks and notes (title and body). The store clears them whenever the
-- text changes; the gateway's embedder fills in rows whose `embedding_model` is NULL.
-- HNSW indexes need a fixed dimension, so the store makes one per dimension in use
-- (`<table>_hnsw_<dims>`, partial on `embedding_dims`) when the first vector of that
-- size arrives.
ALTER TABLE tasks ADD COLUMN embedding vector;
ALTER TABLE tasks ADD COLUMN embedding_model TEXT;
ALTER TABLE tasks ADD COLUMN embedding_dims BIGINT;
CREATE INDEX tasks_unembedded ON tasks(id) WHERE embedding_model IS NULL;
ALTER TABLE notes ADD COLUMN embedding vector;
ALTER TABLE notes ADD COLUMN embedding_model TEXT;
ALTER TABLE notes ADD COLUMN embedding_dims BIGINT;
CREATE INDEX notes_unembedded ON notes(id) WHERE embedding_model IS NULL;

-- Agents and sessions are their owner's alone, so under row-level security the EXISTS
-- below only finds the writer's own agent or session.
ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
CREATE POLICY memories_select ON memories FOR SELECT
    USING (mosaic_may_use(owner_user_id, owner_team_id));
CREATE POLICY memories_insert ON memories FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (agent_id IS NULL OR EXISTS (SELECT 1 FROM agents a WHERE a.id = agent_id))
        AND (source_session_id IS NULL
             OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = source_session_id)));
CREATE POLICY memories_update ON memories FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (agent_id IS NULL OR EXISTS (SELECT 1 FROM agents a WHERE a.id = agent_id)));
CREATE POLICY memories_delete ON memories FOR DELETE
    USING (mosaic_may_delete(owner_user_id, owner_team_id));

-- The embedder acts as the gateway itself: it reads the text of every brain item and
-- writes embeddings back (the store only ever changes the embedding columns so).
CREATE POLICY memories_embedder_select ON memories FOR SELECT USING (mosaic_is_system());
CREATE POLICY memories_embedder_update ON memories FOR UPDATE
    USING (mosaic_is_system()) WITH CHECK (mosaic_is_system());
CREATE POLICY tasks_embedder_select ON tasks FOR SELECT USING (mosaic_is_system());
CREATE POLICY tasks_embedder_update ON tasks FOR UPDATE
    USING (mosaic_is_system()) WITH CHECK (mosaic_is_system());
CREATE POLICY notes_embedder_select ON notes FOR SELECT USING (mosaic_is_system());
CREATE POLICY notes_embedder_update ON notes FOR UPDATE
    USING (mosaic_is_system()) WITH CHECK (mosaic_is_system());

-- Memories: short things worth remembering, owned like the other brain items. Pinned
-- ones go into the context of their owner's runs (with agent_id: that agent's only).
CREATE TABLE memories (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    text              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    tags              TEXT NOT NULL,
    importance        INTEGER NOT NULL,
    pinned            INTEGER NOT NULL DEFAULT 0,
    agent_id          TEXT REFERENCES agents(id) ON DELETE SET NULL,
    source_session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
    owner_user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id     TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    used_at           INTEGER,
    embedding         BLOB,
    embedding_model   TEXT,
    embedding_dims    INTEGER,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX memories_user ON memories(owner_user_id, id);
CREATE INDEX memories_team ON memories(owner_team_id, id);
CREATE INDEX memories_pinned ON memories(owner_user_id, pinned) WHERE pinned = 1;
CREATE INDEX memories_unembedded ON memories(seq) WHERE embedding_model IS NULL;

CREATE VIRTUAL TABLE memories_fts USING fts5(
    text, content='memories', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text);
END;

-- Embeddings of tasks and notes (title and body) for vector search. The store clears
-- them, and `embedding_model`, whenever the text changes; the gateway's embedder fills
-- in rows whose `embedding_model` is NULL. On SQLite the vector is little-endian f32.
ALTER TABLE tasks ADD COLUMN embedding BLOB;
ALTER TABLE tasks ADD COLUMN embedding_model TEXT;
ALTER TABLE tasks ADD COLUMN embedding_dims INTEGER;
CREATE INDEX tasks_unembedded ON tasks(seq) WHERE embedding_model IS NULL;
ALTER TABLE notes ADD COLUMN embedding BLOB;
ALTER TABLE notes ADD COLUMN embedding_model TEXT;
ALTER TABLE notes ADD COLUMN embedding_dims INTEGER;
CREATE INDEX notes_unembedded ON notes(seq) WHERE embedding_model IS NULL;

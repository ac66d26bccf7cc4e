-- Word search under row-level security. PostgreSQL evaluates a condition that is not
-- leakproof (`@@` is not) only after a table's row-level security conditions, so it can
-- never use an index for it: every word search read every row of the table. The words
-- move to side tables without row-level security, where the GIN index serves `@@`.
--
-- A side table holds an item's id, its owner and its words as a tsvector; the store
-- reads it only to pick and rank ids (filtered by the caller's owners) and always
-- fetches what it returns from the item's own table, where row-level security still
-- decides. Rows follow their item (ON DELETE CASCADE); owners never change.
CREATE TABLE tasks_words (
    id            TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    owner_user_id TEXT,
    owner_team_id TEXT,
    search        TSVECTOR NOT NULL
);
INSERT INTO tasks_words SELECT id, owner_user_id, owner_team_id, search FROM tasks;
CREATE INDEX tasks_words_search ON tasks_words USING GIN (search);
ALTER TABLE tasks DROP COLUMN search;

CREATE TABLE notes_words (
    id            TEXT PRIMARY KEY REFERENCES notes(id) ON DELETE CASCADE,
    owner_user_id TEXT,
    owner_team_id TEXT,
    search        TSVECTOR NOT NULL
);
INSERT INTO notes_words SELECT id, owner_user_id, owner_team_id, search FROM notes;
CREATE INDEX notes_words_search ON notes_words USING GIN (search);
ALTER TABLE notes DROP COLUMN search;

CREATE TABLE memories_words (
    id            TEXT PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE,
    owner_user_id TEXT,
    owner_team_id TEXT,
    search        TSVECTOR NOT NULL
);
INSERT INTO memories_words SELECT id, owner_user_id, owner_team_id, search FROM memories;
CREATE INDEX memories_words_search ON memories_words USING GIN (search);
ALTER TABLE memories DROP COLUMN search;

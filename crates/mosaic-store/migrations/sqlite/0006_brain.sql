-- The brain: projects, tasks and notes. Each row is owned by one user or one team,
-- like a workspace. Labels and tags are stored as ",a,b," (lowercase, sorted, no
-- commas inside), so "has label x" is one LIKE '%,x,%'.
CREATE TABLE projects (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    status         TEXT NOT NULL,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id  TEXT REFERENCES teams(id) ON DELETE CASCADE,
    workspace_id   TEXT REFERENCES workspaces(id) ON DELETE SET NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX projects_user ON projects(owner_user_id, id);
CREATE INDEX projects_team ON projects(owner_team_id, id);

-- `seq` is the FTS5 rowid: an INTEGER PRIMARY KEY, because VACUUM may renumber the
-- implicit rowids an external-content index points at.
CREATE TABLE tasks (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         TEXT NOT NULL,
    due_at           INTEGER,
    assignee_user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    labels           TEXT NOT NULL,
    project_id       TEXT REFERENCES projects(id) ON DELETE SET NULL,
    parent_task_id   TEXT REFERENCES tasks(id) ON DELETE SET NULL,
    owner_user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id    TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    done_at          INTEGER,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX tasks_user ON tasks(owner_user_id, id);
CREATE INDEX tasks_team ON tasks(owner_team_id, id);
CREATE INDEX tasks_project ON tasks(project_id);
CREATE INDEX tasks_parent ON tasks(parent_task_id);
CREATE INDEX tasks_assignee ON tasks(assignee_user_id);

CREATE TABLE notes (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    tags           TEXT NOT NULL,
    project_id     TEXT REFERENCES projects(id) ON DELETE SET NULL,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id  TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX notes_user ON notes(owner_user_id, id);
CREATE INDEX notes_team ON notes(owner_team_id, id);
CREATE INDEX notes_project ON notes(project_id);

-- Lexical search: external-content FTS5 indexes over title and body. Triggers keep
-- them in step, in the writing transaction, including rows removed by a cascade
-- (a deleted user or team), which store code never sees.
CREATE VIRTUAL TABLE tasks_fts USING fts5(
    title, body, content='tasks', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts(rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts(tasks_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER tasks_fts_update AFTER UPDATE OF title, body ON tasks BEGIN
    INSERT INTO tasks_fts(tasks_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO tasks_fts(rowid, title, body) VALUES (new.seq, new.title, new.body);
END;

CREATE VIRTUAL TABLE notes_fts USING fts5(
    title, body, content='notes', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER notes_fts_insert AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts(rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN
    INSERT INTO notes_fts(notes_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER notes_fts_update AFTER UPDATE OF title, body ON notes BEGIN
    INSERT INTO notes_fts(notes_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO notes_fts(rowid, title, body) VALUES (new.seq, new.title, new.body);
END;

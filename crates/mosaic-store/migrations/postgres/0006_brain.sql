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
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX projects_user ON projects(owner_user_id, id);
CREATE INDEX projects_team ON projects(owner_team_id, id);

-- `search` is written by the store with every title or body change: the words of
-- both, lowercased by Mosaic (Unicode-aware whatever the database's locale), the
-- title weighted A and the body B so a title match ranks above a passing mention.
CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         TEXT NOT NULL,
    due_at           BIGINT,
    assignee_user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    labels           TEXT NOT NULL,
    project_id       TEXT REFERENCES projects(id) ON DELETE SET NULL,
    parent_task_id   TEXT REFERENCES tasks(id) ON DELETE SET NULL,
    owner_user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id    TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    done_at          BIGINT,
    search           TSVECTOR NOT NULL DEFAULT ''::tsvector,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX tasks_user ON tasks(owner_user_id, id);
CREATE INDEX tasks_team ON tasks(owner_team_id, id);
CREATE INDEX tasks_project ON tasks(project_id);
CREATE INDEX tasks_parent ON tasks(parent_task_id);
CREATE INDEX tasks_assignee ON tasks(assignee_user_id);
CREATE INDEX tasks_search ON tasks USING GIN (search);

CREATE TABLE notes (
    id             TEXT PRIMARY KEY,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    tags           TEXT NOT NULL,
    project_id     TEXT REFERENCES projects(id) ON DELETE SET NULL,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id  TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    search         TSVECTOR NOT NULL DEFAULT ''::tsvector,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX notes_user ON notes(owner_user_id, id);
CREATE INDEX notes_team ON notes(owner_team_id, id);
CREATE INDEX notes_project ON notes(project_id);
CREATE INDEX notes_search ON notes USING GIN (search);

-- Members of the owning team read and write its items; only its owners and admins
-- delete them. A reference (workspace, project) must be a row the acting user can see
-- with the same owner: the sub-selects below run under those tables' policies, so they
-- cannot reach another tenant's rows. (A parent task is checked by the store only: a
-- policy on tasks may not read tasks.)
CREATE FUNCTION mosaic_may_use(user_owner text, team_owner text) RETURNS boolean
LANGUAGE sql STABLE AS
$$ SELECT user_owner = mosaic_uid() OR mosaic_in_team(team_owner) $$;
CREATE FUNCTION mosaic_may_delete(user_owner text, team_owner text) RETURNS boolean
LANGUAGE sql STABLE AS
$$ SELECT user_owner = mosaic_uid() OR mosaic_manages_team(team_owner) $$;

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_select ON projects FOR SELECT
    USING (mosaic_may_use(owner_user_id, owner_team_id));
CREATE POLICY projects_insert ON projects FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (workspace_id IS NULL OR EXISTS (SELECT 1 FROM workspaces w WHERE w.id = workspace_id
             AND w.owner_user_id IS NOT DISTINCT FROM projects.owner_user_id
             AND w.owner_team_id IS NOT DISTINCT FROM projects.owner_team_id)));
CREATE POLICY projects_update ON projects FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (workspace_id IS NULL OR EXISTS (SELECT 1 FROM workspaces w WHERE w.id = workspace_id
             AND w.owner_user_id IS NOT DISTINCT FROM projects.owner_user_id
             AND w.owner_team_id IS NOT DISTINCT FROM projects.owner_team_id)));
CREATE POLICY projects_delete ON projects FOR DELETE
    USING (mosaic_may_delete(owner_user_id, owner_team_id));

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tasks_select ON tasks FOR SELECT
    USING (mosaic_may_use(owner_user_id, owner_team_id));
CREATE POLICY tasks_insert ON tasks FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id)));
CREATE POLICY tasks_update ON tasks FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id)));
CREATE POLICY tasks_delete ON tasks FOR DELETE
    USING (mosaic_may_delete(owner_user_id, owner_team_id));

ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_select ON notes FOR SELECT
    USING (mosaic_may_use(owner_user_id, owner_team_id));
CREATE POLICY notes_insert ON notes FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM notes.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM notes.owner_team_id)));
CREATE POLICY notes_update ON notes FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM notes.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM notes.owner_team_id)));
CREATE POLICY notes_delete ON notes FOR DELETE
    USING (mosaic_may_delete(owner_user_id, owner_team_id));

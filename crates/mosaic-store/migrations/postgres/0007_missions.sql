-- Missions: a goal with success criteria and milestones (JSON text, a list of
-- {"title", "done"}), owned like the other brain items. Tasks link to at most one
-- mission; progress is counted from them when a mission is read.
CREATE TABLE missions (
    id               TEXT PRIMARY KEY,
    goal             TEXT NOT NULL,
    success_criteria TEXT NOT NULL,
    milestones       TEXT NOT NULL,
    status           TEXT NOT NULL,
    project_id       TEXT REFERENCES projects(id) ON DELETE SET NULL,
    owner_user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id    TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX missions_user ON missions(owner_user_id, id);
CREATE INDEX missions_team ON missions(owner_team_id, id);
CREATE INDEX missions_project ON missions(project_id);

ALTER TABLE tasks ADD COLUMN mission_id TEXT REFERENCES missions(id) ON DELETE SET NULL;
CREATE INDEX tasks_mission ON tasks(mission_id);

-- As for projects: members of the owning team read and write, its owners and admins
-- delete, and a referenced project must be visible with the same owner.
ALTER TABLE missions ENABLE ROW LEVEL SECURITY;
ALTER TABLE missions FORCE ROW LEVEL SECURITY;
CREATE POLICY missions_select ON missions FOR SELECT
    USING (mosaic_may_use(owner_user_id, owner_team_id));
CREATE POLICY missions_insert ON missions FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM missions.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM missions.owner_team_id)));
CREATE POLICY missions_update ON missions FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM missions.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM missions.owner_team_id)));
CREATE POLICY missions_delete ON missions FOR DELETE
    USING (mosaic_may_delete(owner_user_id, owner_team_id));

-- A task's mission, like its project, must be visible with the task's owner.
DROP POLICY tasks_insert ON tasks;
DROP POLICY tasks_update ON tasks;
CREATE POLICY tasks_insert ON tasks FOR INSERT
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id))
        AND (mission_id IS NULL OR EXISTS (SELECT 1 FROM missions m WHERE m.id = mission_id
             AND m.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND m.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id)));
CREATE POLICY tasks_update ON tasks FOR UPDATE
    USING (mosaic_may_use(owner_user_id, owner_team_id))
    WITH CHECK (mosaic_may_use(owner_user_id, owner_team_id)
        AND (project_id IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id
             AND p.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND p.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id))
        AND (mission_id IS NULL OR EXISTS (SELECT 1 FROM missions m WHERE m.id = mission_id
             AND m.owner_user_id IS NOT DISTINCT FROM tasks.owner_user_id
             AND m.owner_team_id IS NOT DISTINCT FROM tasks.owner_team_id)));

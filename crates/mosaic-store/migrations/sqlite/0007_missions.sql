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
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX missions_user ON missions(owner_user_id, id);
CREATE INDEX missions_team ON missions(owner_team_id, id);
CREATE INDEX missions_project ON missions(project_id);

ALTER TABLE tasks ADD COLUMN mission_id TEXT REFERENCES missions(id) ON DELETE SET NULL;
CREATE INDEX tasks_mission ON tasks(mission_id);

-- Agents: each user's own configurations of prompt, route and tools.
CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    owner_user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    system_prompt  TEXT NOT NULL,
    route          TEXT NOT NULL,
    tools          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (owner_user_id, name)
);

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
CREATE POLICY agents_own ON agents USING (owner_user_id = mosaic_uid());

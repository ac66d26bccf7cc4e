-- Accounts: users, credentials, teams, workspaces, preferences.
-- Times are Unix milliseconds; flags are 0/1 integers (the same types on both engines).
-- Row-level security is the second wall behind the store's own scoping: every
-- transaction sets mosaic.uid (acting user), mosaic.role (user | admin | system) and
-- mosaic.teams (comma-separated team ids of the acting user).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      BIGINT NOT NULL DEFAULT 0,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, id);

CREATE TABLE web_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

CREATE TABLE bootstrap_tokens (
    id          TEXT PRIMARY KEY,
    -- 'startup' (printed by the gateway, replaced at each start) or 'offline'
    -- (`mosaic admin bootstrap`, replaced only by another offline one).
    source      TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id   TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE workspaces (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_team_id  TEXT REFERENCES teams(id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_team_id IS NULL))
);
CREATE INDEX workspaces_user ON workspaces(owner_user_id);
CREATE INDEX workspaces_team ON workspaces(owner_team_id);

CREATE TABLE preferences (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE FUNCTION mosaic_uid() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('mosaic.uid', true), '') $$;
CREATE FUNCTION mosaic_role() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('mosaic.role', true), '') $$;
CREATE FUNCTION mosaic_in_team(team text) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT team = ANY (string_to_array(coalesce(current_setting('mosaic.teams', true), ''), ',')) $$;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_scope ON users
    USING (id = mosaic_uid() OR mosaic_role() IN ('admin', 'system')
           OR id IN (SELECT user_id FROM team_members WHERE mosaic_in_team(team_id)))
    WITH CHECK (id = mosaic_uid() OR mosaic_role() IN ('admin', 'system'));

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_scope ON api_tokens
    USING (user_id = mosaic_uid() OR mosaic_role() = 'system');

ALTER TABLE web_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE web_sessions FORCE ROW LEVEL SECURITY;
-- Admins end other users' sessions (password reset, disabling).
CREATE POLICY web_sessions_scope ON web_sessions
    USING (user_id = mosaic_uid() OR mosaic_role() IN ('admin', 'system'));

ALTER TABLE bootstrap_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE bootstrap_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY bootstrap_tokens_scope ON bootstrap_tokens
    USING (mosaic_role() = 'system');

ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams FORCE ROW LEVEL SECURITY;
CREATE POLICY teams_scope ON teams
    USING (mosaic_in_team(id) OR mosaic_role() = 'system')
    WITH CHECK (mosaic_in_team(id) OR created_by = mosaic_uid() OR mosaic_role() = 'system');

ALTER TABLE team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members FORCE ROW LEVEL SECURITY;
CREATE POLICY team_members_scope ON team_members
    USING (user_id = mosaic_uid() OR mosaic_in_team(team_id) OR mosaic_role() = 'system');

ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY workspaces_scope ON workspaces
    USING (owner_user_id = mosaic_uid() OR mosaic_in_team(owner_team_id) OR mosaic_role() = 'system');

ALTER TABLE preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE preferences FORCE ROW LEVEL SECURITY;
CREATE POLICY preferences_scope ON preferences
    USING (user_id = mosaic_uid());

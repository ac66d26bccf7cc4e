-- Accounts: users, credentials, teams, workspaces, preferences.
-- Times are Unix milliseconds; flags are 0/1 integers (the same types on both engines).
-- Row-level security is the second wall behind the store's own scoping: every
-- transaction sets mosaic.uid (acting user), mosaic.role (user | admin | system), and
-- the comma-separated ids of the acting user's teams: mosaic.teams (all of them),
-- mosaic.teams_managed (where owner or admin) and mosaic.teams_owned (where owner).
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
CREATE FUNCTION mosaic_setting_has(setting text, item text) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT item = ANY (string_to_array(coalesce(current_setting(setting, true), ''), ',')) $$;
-- The acting user is in the team / owns or administers it / owns it.
CREATE FUNCTION mosaic_in_team(team text) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT mosaic_setting_has('mosaic.teams', team) $$;
CREATE FUNCTION mosaic_manages_team(team text) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT mosaic_setting_has('mosaic.teams_managed', team) $$;
CREATE FUNCTION mosaic_owns_team(team text) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT mosaic_setting_has('mosaic.teams_owned', team) $$;
CREATE FUNCTION mosaic_is_system() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT mosaic_role() = 'system' $$;
CREATE FUNCTION mosaic_is_admin() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT mosaic_role() IN ('admin', 'system') $$;

-- One policy per command: what a principal may see is not what it may change.
-- (PostgreSQL also applies the SELECT policy to rows an UPDATE or DELETE reads.)

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_select ON users FOR SELECT
    USING (id = mosaic_uid() OR mosaic_is_admin()
           OR id IN (SELECT user_id FROM team_members WHERE mosaic_in_team(team_id)));
CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (mosaic_is_admin());
CREATE POLICY users_update ON users FOR UPDATE
    USING (id = mosaic_uid() OR mosaic_is_admin())
    WITH CHECK (id = mosaic_uid() OR mosaic_is_admin());
CREATE POLICY users_delete ON users FOR DELETE USING (mosaic_is_admin());
-- Users may change their own row, but not their rights or name.
CREATE FUNCTION mosaic_guard_user_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.is_admin <> OLD.is_admin OR NEW.disabled <> OLD.disabled OR NEW.username <> OLD.username)
       AND NOT mosaic_is_admin() THEN
        RAISE EXCEPTION 'only an admin may change admin rights, disable users or rename them'
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_guard_update BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION mosaic_guard_user_update();

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
-- Admins see and delete other users' tokens (hashes only) to revoke them on a reset.
CREATE POLICY api_tokens_select ON api_tokens FOR SELECT
    USING (user_id = mosaic_uid() OR mosaic_is_admin());
CREATE POLICY api_tokens_insert ON api_tokens FOR INSERT WITH CHECK (user_id = mosaic_uid());
CREATE POLICY api_tokens_update ON api_tokens FOR UPDATE USING (mosaic_is_system());
CREATE POLICY api_tokens_delete ON api_tokens FOR DELETE
    USING (user_id = mosaic_uid() OR mosaic_is_admin());

ALTER TABLE web_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE web_sessions FORCE ROW LEVEL SECURITY;
-- Admins end other users' sessions (password reset, disabling).
CREATE POLICY web_sessions_select ON web_sessions FOR SELECT
    USING (user_id = mosaic_uid() OR mosaic_is_admin());
CREATE POLICY web_sessions_insert ON web_sessions FOR INSERT WITH CHECK (user_id = mosaic_uid());
CREATE POLICY web_sessions_delete ON web_sessions FOR DELETE
    USING (user_id = mosaic_uid() OR mosaic_is_admin());

ALTER TABLE bootstrap_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE bootstrap_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY bootstrap_tokens_system ON bootstrap_tokens USING (mosaic_is_system());

ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams FORCE ROW LEVEL SECURITY;
CREATE POLICY teams_select ON teams FOR SELECT USING (mosaic_in_team(id) OR mosaic_is_system());
CREATE POLICY teams_insert ON teams FOR INSERT WITH CHECK (created_by = mosaic_uid());
CREATE POLICY teams_update ON teams FOR UPDATE
    USING (mosaic_manages_team(id)) WITH CHECK (mosaic_manages_team(id));
CREATE POLICY teams_delete ON teams FOR DELETE USING (mosaic_owns_team(id) OR mosaic_is_system());

ALTER TABLE team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members FORCE ROW LEVEL SECURITY;
CREATE POLICY team_members_select ON team_members FOR SELECT
    USING (user_id = mosaic_uid() OR mosaic_in_team(team_id) OR mosaic_is_system());
CREATE POLICY team_members_insert ON team_members FOR INSERT
    WITH CHECK (mosaic_manages_team(team_id));
CREATE POLICY team_members_update ON team_members FOR UPDATE
    USING (mosaic_manages_team(team_id) OR mosaic_is_system())
    WITH CHECK (mosaic_manages_team(team_id) OR mosaic_is_system());
CREATE POLICY team_members_delete ON team_members FOR DELETE
    USING (user_id = mosaic_uid() OR mosaic_manages_team(team_id));

ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY workspaces_select ON workspaces FOR SELECT
    USING (owner_user_id = mosaic_uid() OR mosaic_in_team(owner_team_id));
CREATE POLICY workspaces_insert ON workspaces FOR INSERT
    WITH CHECK (owner_user_id = mosaic_uid() OR mosaic_manages_team(owner_team_id));
CREATE POLICY workspaces_update ON workspaces FOR UPDATE
    USING (owner_user_id = mosaic_uid() OR mosaic_manages_team(owner_team_id))
    WITH CHECK (owner_user_id = mosaic_uid() OR mosaic_manages_team(owner_team_id));
CREATE POLICY workspaces_delete ON workspaces FOR DELETE
    USING (owner_user_id = mosaic_uid() OR mosaic_manages_team(owner_team_id));

ALTER TABLE preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE preferences FORCE ROW LEVEL SECURITY;
CREATE POLICY preferences_own ON preferences USING (user_id = mosaic_uid());

-- Model providers and routes, gateway-wide (owner_user_id NULL: admins manage them) or a
-- user's own; per-user token usage by day.
CREATE TABLE providers (
    id             TEXT PRIMARY KEY,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    wire           TEXT NOT NULL,
    base_url       TEXT NOT NULL,
    -- Encrypted by the gateway (never plaintext); NULL when there is no key.
    api_key_enc    TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX providers_scope_name ON providers(COALESCE(owner_user_id, ''), name);

CREATE TABLE routes (
    id             TEXT PRIMARY KEY,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    steps          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX routes_scope_name ON routes(COALESCE(owner_user_id, ''), name);

CREATE TABLE usage_daily (
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day            TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    requests       BIGINT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    cached_tokens  BIGINT NOT NULL,
    PRIMARY KEY (user_id, day, provider, model)
);

ALTER TABLE providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE providers FORCE ROW LEVEL SECURITY;
CREATE POLICY providers_select ON providers FOR SELECT
    USING (owner_user_id IS NULL OR owner_user_id = mosaic_uid());
CREATE POLICY providers_write ON providers FOR ALL
    USING (owner_user_id = mosaic_uid() OR (owner_user_id IS NULL AND mosaic_is_admin()))
    WITH CHECK (owner_user_id = mosaic_uid() OR (owner_user_id IS NULL AND mosaic_is_admin()));

ALTER TABLE routes ENABLE ROW LEVEL SECURITY;
ALTER TABLE routes FORCE ROW LEVEL SECURITY;
CREATE POLICY routes_select ON routes FOR SELECT
    USING (owner_user_id IS NULL OR owner_user_id = mosaic_uid());
CREATE POLICY routes_write ON routes FOR ALL
    USING (owner_user_id = mosaic_uid() OR (owner_user_id IS NULL AND mosaic_is_admin()))
    WITH CHECK (owner_user_id = mosaic_uid() OR (owner_user_id IS NULL AND mosaic_is_admin()));

ALTER TABLE usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY usage_daily_own ON usage_daily USING (user_id = mosaic_uid());

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
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX providers_scope_name ON providers(COALESCE(owner_user_id, ''), name);

CREATE TABLE routes (
    id             TEXT PRIMARY KEY,
    owner_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    steps          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX routes_scope_name ON routes(COALESCE(owner_user_id, ''), name);

CREATE TABLE usage_daily (
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day            TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    requests       INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cached_tokens  INTEGER NOT NULL,
    PRIMARY KEY (user_id, day, provider, model)
);

-- The people who sign in to the web app (API keys stay for machines): an email, unique
-- whatever its case, and an argon2 hash of the password, never the password.
CREATE TABLE accounts (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_by_email ON accounts (lower(email));

-- A signed-in browser: the SHA-256 of its cookie's random token (a stolen table opens no
-- session), the CSRF token its changes carry, and when it ends.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

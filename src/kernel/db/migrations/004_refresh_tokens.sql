-- Refresh tokens and the session lifecycle. A session is one login and every refresh token descended from it:
-- ending the session ends them all, which is what reuse detection and logout need.

-- When the session last proved itself (login or refresh): the idle timeout counts from here.
ALTER TABLE sessions ADD COLUMN last_used_at timestamptz;
UPDATE sessions SET last_used_at = created_at;
ALTER TABLE sessions ALTER COLUMN last_used_at SET NOT NULL;
ALTER TABLE sessions ALTER COLUMN last_used_at SET DEFAULT now();
-- Why a session ended: logout, password_change, refresh_token_reused, ...
ALTER TABLE sessions ADD COLUMN revoked_reason text;

CREATE TABLE refresh_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  -- SHA-256 of the token: the token itself is never stored.
  token_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Set when the token was exchanged; presenting it again after the grace window means it was stolen.
  rotated_at timestamptz,
  -- The successor, encrypted with a key derived from this token (which only its holder has), so that a second
  -- refresh within the grace window gets the same successor without the database ever holding a usable token.
  successor_sealed bytea
);

CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Operator-provided keys (JWT_PRIVATE_KEY) are recorded by their public half only, so that the previous key
-- stays in the JWKS while the tokens it signed are still valid.
ALTER TABLE signing_keys ALTER COLUMN private_jwk DROP NOT NULL;

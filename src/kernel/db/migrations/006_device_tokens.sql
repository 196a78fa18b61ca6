-- Device tokens: handed out at each sign-in, presented at the next one. A login that brings a live token of its
-- own user is counted against the token instead of the account, so an owner still gets in while attackers
-- hold the account at its limit.
CREATE TABLE device_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the token: the token itself is never stored.
  token_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

CREATE UNIQUE INDEX device_tokens_token_hash_key ON device_tokens (token_hash);
CREATE INDEX device_tokens_user_id_idx ON device_tokens (user_id);

-- One row per login (or registration). Access tokens carry the row's id as `sid`, so ending a session
-- refuses its tokens at once. Refresh tokens will hang off this table.
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- How the user proved who they are; with authenticated_at it decides whether the session is fresh
  -- enough to change the password or delete the account without current_password.
  auth_method text NOT NULL,
  authenticated_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  user_agent text,
  ip text
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Administration: operators' API keys, account locks, roles, and account recovery through an operator.

CREATE TABLE admin_keys (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  -- SHA-256 of the key: the key itself is shown once, when it is created, and never stored.
  key_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE UNIQUE INDEX admin_keys_key_hash_key ON admin_keys (key_hash);
-- A name stands for one live key: it is the actor the audit trail records.
CREATE UNIQUE INDEX admin_keys_live_name_key ON admin_keys (name) WHERE revoked_at IS NULL;

-- Short names other services check in the access token's roles claim; set by operators only.
ALTER TABLE users ADD COLUMN roles text[] NOT NULL DEFAULT '{}';
-- A locked account signs in nowhere (after the right password it is told so); until the lock's end if it has one.
ALTER TABLE users ADD COLUMN locked_at timestamptz;
ALTER TABLE users ADD COLUMN locked_until timestamptz;
ALTER TABLE users ADD COLUMN lock_reason text;

-- One live recovery code per account, issued by an operator, redeemed by its owner for a new password.
CREATE TABLE account_recovery_codes (
  user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the code: 128 random bits, so no salt is needed.
  code_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

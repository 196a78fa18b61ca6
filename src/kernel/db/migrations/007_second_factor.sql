-- A second factor: TOTP authenticators, recovery codes, and the short-lived tokens of a sign-in that has passed
-- its password and waits for a code.

-- How the session's user proved who they are, as RFC 8176 names it, and the assurance level that gives
-- (1: the password alone; 2: the password and a second factor). Refreshing keeps them; the access tokens carry them.
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';
ALTER TABLE sessions ADD COLUMN aal smallint NOT NULL DEFAULT 1;

CREATE TABLE mfa_factors (
  id uuid PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  type text NOT NULL,
  -- AES-256-GCM of the TOTP secret (nonce, tag and ciphertext), under the key whose id is beside it; the
  -- factor's id is the associated data, so a ciphertext copied into another row does not decrypt.
  secret_sealed bytea NOT NULL,
  secret_key_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Null while the enrolment waits for its first code; such a factor does nothing and expires.
  verified_at timestamptz,
  last_used_at timestamptz,
  -- The last TOTP time step accepted: a code of this step or an earlier one is refused (each code works once).
  last_step bigint NOT NULL DEFAULT 0
);

CREATE INDEX mfa_factors_user_id_idx ON mfa_factors (user_id);

-- Whether the account has a verified factor, kept beside the password hash by every statement that adds or
-- removes one: a login reads it with the hash, at no cost to the accounts without one.
ALTER TABLE users ADD COLUMN has_second_factor boolean NOT NULL DEFAULT false;
-- One working factor of each type per account.
CREATE UNIQUE INDEX mfa_factors_one_verified_key ON mfa_factors (user_id, type) WHERE verified_at IS NOT NULL;

CREATE TABLE mfa_recovery_codes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the code as normalised (upper case, no separators): 80 random bits each, so no salt is needed.
  code_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz
);

CREATE UNIQUE INDEX mfa_recovery_codes_user_code_key ON mfa_recovery_codes (user_id, code_hash);

-- A sign-in that passed its password and waits for the second factor. The token is handed to the client and
-- only its SHA-256 is kept; it works once, for a few minutes, and for a few wrong codes.
CREATE TABLE mfa_challenges (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash bytea NOT NULL,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- The password hash the password was verified against: the session starts only if it is still the account's.
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  failed_attempts integer NOT NULL DEFAULT 0,
  used_at timestamptz
);

CREATE UNIQUE INDEX mfa_challenges_token_hash_key ON mfa_challenges (token_hash);
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);

-- Development only: the key that encrypts second-factor secrets when SECRETS_ENCRYPTION_KEY is not set.
-- Production refuses to run that way once factors exist.
CREATE TABLE generated_secrets_keys (
  id text PRIMARY KEY,
  key bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

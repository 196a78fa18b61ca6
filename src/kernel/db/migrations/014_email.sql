-- Email: an optional address per account, proven by its owner before it is trusted, and the one-time links and
-- codes sent to it.

-- The address as the service keeps it (trimmed, its domain lower-cased and IDNA-encoded); null: none.
ALTER TABLE users ADD COLUMN email text;
-- Its key: the whole address in lower case. Two accounts may each be waiting to prove one address, but once
-- proven it is one account's only.
ALTER TABLE users ADD COLUMN email_normalized text;
-- When its owner proved it theirs (a link followed, or an operator's word); null while it is pending.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE UNIQUE INDEX users_verified_email_key ON users (email_normalized) WHERE email_verified_at IS NOT NULL;
CREATE INDEX users_email_normalized_idx ON users (email_normalized) WHERE email_normalized IS NOT NULL;

-- Links (verify an address, reset a password) and sign-in codes, each sent to one address and good for that
-- address only: the account's address changing makes them worthless.
CREATE TABLE email_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose text NOT NULL CHECK (purpose IN ('verify', 'reset', 'login')),
  -- A link's token (256 random bits): its SHA-256. A sign-in code (six digits): an HMAC under a key the database
  -- does not hold, when the service has one, so that the database alone cannot be searched for the code.
  token_hash bytea NOT NULL,
  email_normalized text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  -- Wrong codes sent for it by clients without a device token of the account.
  failed_attempts integer NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX email_tokens_token_hash_key ON email_tokens (token_hash) WHERE purpose <> 'login';
CREATE INDEX email_tokens_user_purpose_idx ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_idx ON email_tokens (expires_at);

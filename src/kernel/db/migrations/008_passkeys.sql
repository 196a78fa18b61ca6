-- Passkeys (WebAuthn credentials): sign-in without a password, and a second factor that resists phishing.
CREATE TABLE passkeys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- The authenticator's credential id, base64url, as WebAuthn responses name it.
  credential_id text NOT NULL,
  -- COSE public key: what verifies the authenticator's signatures. Nothing secret is stored.
  public_key bytea NOT NULL,
  -- The signature counter the authenticator last reported; one that goes backwards means a cloned authenticator.
  counter bigint NOT NULL DEFAULT 0,
  transports text[] NOT NULL DEFAULT '{}',
  -- singleDevice (bound to one authenticator) or multiDevice (synced between a user's devices).
  device_type text NOT NULL,
  backed_up boolean NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz
);

CREATE UNIQUE INDEX passkeys_credential_id_key ON passkeys (credential_id);
CREATE INDEX passkeys_user_id_idx ON passkeys (user_id);

-- Challenges handed out with WebAuthn options: random, kept as SHA-256, used once, for a few minutes. A
-- registration's or a second step's belongs to its user; a passkey sign-in's to nobody yet.
CREATE TABLE webauthn_challenges (
  challenge_hash bytea PRIMARY KEY,
  purpose text NOT NULL,
  user_id bigint REFERENCES users (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL
);

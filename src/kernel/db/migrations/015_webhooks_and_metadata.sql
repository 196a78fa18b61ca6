-- Webhook endpoints, and the metadata other services keep on an account.

-- JSON objects of at most a few KB each, checked by the service before they are written. The user sets
-- user_metadata (PATCH /api/auth/me); only operators set app_metadata (PATCH /admin/users/:id). Neither goes into
-- access tokens unless the token hook puts it there.
ALTER TABLE users ADD COLUMN user_metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN app_metadata jsonb NOT NULL DEFAULT '{}';

-- Where events are sent. Each delivery is an outbox row (topic 'webhook', subject the endpoint's id) written in the
-- transaction of the change it tells of.
CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY,
  url text NOT NULL,
  description text NOT NULL DEFAULT '',
  -- Event types, or '*' for every one.
  events text[] NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  -- AES-256-GCM of the signing secret under SECRETS_ENCRYPTION_KEY's key of this id, the endpoint's id as the
  -- associated data (as mfa_factors keeps TOTP secrets): the service signs with it, so it must read it back.
  secret_sealed bytea NOT NULL,
  secret_key_id text NOT NULL,
  -- The secret before the last rotation: it signs beside the new one until previous_secret_until.
  previous_secret_sealed bytea,
  previous_secret_key_id text,
  previous_secret_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);


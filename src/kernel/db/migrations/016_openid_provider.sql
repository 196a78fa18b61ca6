-- The OpenID provider: the apps registered to sign users in (clients), what the provider keeps between requests
-- (its sessions, interactions, grants, codes and tokens), and which of the service's sessions each of its browser
-- sessions stands on.

-- An app, by its client_id: its RFC 7591 metadata as registered, and the SHA-256 of its secret (256 random
-- bits, shown once) when it has one.
CREATE TABLE oidc_clients (
  id text PRIMARY KEY,
  metadata jsonb NOT NULL,
  secret_hash bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per stored object of the provider library, by its kind ("model": Session, Grant, AccessToken, ...)
-- and id. The columns beside the payload are what the library looks objects up by.
CREATE TABLE oidc_models (
  model text NOT NULL,
  id text NOT NULL,
  payload jsonb NOT NULL,
  grant_id text,
  uid text,
  user_code text,
  consumed_at timestamptz,
  expires_at timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX oidc_models_grant_idx ON oidc_models (model, grant_id) WHERE grant_id IS NOT NULL;
CREATE UNIQUE INDEX oidc_models_uid_idx ON oidc_models (model, uid) WHERE uid IS NOT NULL;
CREATE UNIQUE INDEX oidc_models_user_code_idx ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oidc_models_expiry_idx ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;

-- A provider session (by its uid) began with a sign-in that started one of the service's sessions: when that
-- session ends, so does the provider's, and the apps signed in through it are told. No foreign key: the row must
-- outlive a deleted account's sessions, to tell its apps.
CREATE TABLE oidc_session_links (
  provider_session_uid text PRIMARY KEY,
  session_id uuid NOT NULL,
  user_id bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oidc_session_links_session_idx ON oidc_session_links (session_id);
CREATE INDEX oidc_session_links_user_idx ON oidc_session_links (user_id);

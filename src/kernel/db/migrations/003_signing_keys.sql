-- Asymmetric signing keys, shared by every instance. The newest unretired key of the configured algorithm
-- signs; every unretired key verifies and is published in the JWKS, which is what key rotation needs.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL,
  public_jwk jsonb NOT NULL,
  private_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

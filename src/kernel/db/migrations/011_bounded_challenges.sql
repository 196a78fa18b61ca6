-- A second step's passkey challenge belongs to the sign-in (mfa_token) it was asked for: each owner keeps its
-- newest few challenges only, and one sign-in cannot push out another's. They go with their sign-in.
ALTER TABLE webauthn_challenges ADD COLUMN mfa_challenge_id bigint REFERENCES mfa_challenges (id) ON DELETE CASCADE;

CREATE INDEX webauthn_challenges_mfa_challenge_idx ON webauthn_challenges (mfa_challenge_id) WHERE mfa_challenge_id IS NOT NULL;
CREATE INDEX webauthn_challenges_user_idx ON webauthn_challenges (user_id, purpose) WHERE user_id IS NOT NULL;

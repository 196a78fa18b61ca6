-- What the first step of a sign-in proved, kept with the token of its second step: the second step must be
-- another factor than the first (not the passkey that made it), and the session's amr and aal are the union of
-- what the two steps proved.
ALTER TABLE mfa_challenges ADD COLUMN first_step_amr text[] NOT NULL DEFAULT '{pwd}';
ALTER TABLE mfa_challenges ADD COLUMN first_passkey_id uuid;

-- Usernames are keyed by the TypeScript alone (src/auth/usernames.ts). SQL cannot compute those keys: PostgreSQL has
-- no Unicode case folding, its lower() depends on the database's locale, and the adoption in 001 trimmed before
-- NFKC rather than after, so some adopted names could never sign in. Instead each row records which version of the
-- rules computed its keys; the rows here before this migration have none, and the service computes their keys
-- at start (applyUsernameRules), before it serves a request.
ALTER TABLE users ADD COLUMN username_rules smallint;

-- UTS #39 skeletons of each name as it prints (typed, in small letters, in capitals, capitalised): a name sharing
-- one with another account's prints like it (аdmin and admin, ВОВ and bob) and is refused as taken.
CREATE TABLE username_skeletons (
  skeleton text PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX username_skeletons_user_id_idx ON username_skeletons (user_id);

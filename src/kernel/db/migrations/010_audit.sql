-- The audit trail: security events of accounts (sign-ins, changes, second factors, operators' actions).
CREATE TABLE audit_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL,
  -- No foreign key: the events of a deleted account stay, for as long as the retention says.
  user_id bigint,
  -- `user`, `admin:<key name>` or `system`.
  actor text NOT NULL,
  ip text,
  user_agent text,
  request_id text,
  -- Small whitelisted scalars only: never a password, token, code or hash of one.
  details jsonb NOT NULL DEFAULT '{}',
  -- Set on the one row that counts the failed logins of an address in a minute beyond the first few.
  aggregate_key text
);

CREATE INDEX audit_events_user_time_idx ON audit_events (user_id, time DESC, id DESC);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_type_time_idx ON audit_events (type, time DESC, id DESC);
CREATE UNIQUE INDEX audit_events_aggregate_key ON audit_events (aggregate_key);

-- How many failed logins without a known account each address made in each minute, whatever the instance:
-- the first few are recorded one by one, the rest only counted on their minute's aggregate row.
CREATE TABLE audit_failure_buckets (
  ip text NOT NULL,
  minute timestamptz NOT NULL,
  reason text NOT NULL,
  count integer NOT NULL,
  PRIMARY KEY (ip, minute, reason)
);

-- Work that must reach the outside (mail, webhooks), written in the same transaction as the change it tells of:
-- no message without its change, and none for a change that was rolled back. Senders claim due rows with
-- FOR UPDATE SKIP LOCKED, so two instances never deliver one row at once.
CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Which sender delivers it: 'email', 'webhook'.
  topic text NOT NULL,
  -- What the sender groups deliveries by (a webhook endpoint's id); null when nothing.
  subject text,
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- When a sender may next take it: a retry's time, or the end of a sender's lease while it delivers.
  available_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  last_attempt_at timestamptz,
  finished_at timestamptz
);

CREATE INDEX outbox_due_idx ON outbox (available_at) WHERE state = 'pending';
CREATE INDEX outbox_topic_subject_idx ON outbox (topic, subject, id DESC);
CREATE INDEX outbox_finished_idx ON outbox (finished_at) WHERE state <> 'pending';

-- The outbox's hot queries, with indexes the planner takes without statistics (mailgate runs no ANALYZE):
-- the sender's claim read every queued row through outbox_state and sorted them (4 ms a claim at
-- 2,000 queued mails, growing with the queue); the per-recipient caps on automatic answers read
-- every acknowledgement of the hour through outbox_kind_created.
DROP INDEX outbox_state;
CREATE INDEX outbox_state ON outbox(state, not_before, id);
DROP INDEX outbox_rcpt;
CREATE INDEX outbox_rcpt ON outbox(rcpt_to, kind, created_at);

-- As SQLite's 0023: outbox_due served no statement once outbox_state covers (state, not_before, id)
-- (the claim, the due probe and the counts use outbox_state); each outgoing mail only wrote it.
DROP INDEX IF EXISTS outbox_due;

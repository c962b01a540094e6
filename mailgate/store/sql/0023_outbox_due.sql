-- outbox_due (queued rows by not_before) has served no statement since 0020 gave outbox_state the
-- columns (state, not_before, id): the sender's claim, its "anything due?" probe and the counts
-- all search outbox_state, and EXPLAIN QUERY PLAN shows it. Every outgoing mail still wrote an
-- entry into it and deleted it again when the row left 'queued': a third of the INSERT's time.
DROP INDEX IF EXISTS outbox_due;

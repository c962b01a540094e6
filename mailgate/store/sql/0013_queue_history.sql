-- An operator who requeues a dead spool row or a failed mail must still see why it died: a retry
-- that failed again for another reason, or not at all, is otherwise impossible to explain.
ALTER TABLE spool ADD COLUMN last_error TEXT;   -- the error the row had when it was last requeued
ALTER TABLE spool ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;  -- times requeued by an operator
ALTER TABLE spool ADD COLUMN retried_at TEXT;
ALTER TABLE outbox ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;  -- times requeued by an operator

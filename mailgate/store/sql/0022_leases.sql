-- Several daemons may share one database: a row being worked on names the daemon (node) that
-- claimed it and until when. Another daemon takes it over only once the lease ran out (its holder
-- died), and a restarted daemon takes back at once only its own; a start no longer resets every
-- 'sending' row, which re-sent mail another live daemon was sending. Rows claimed before this
-- migration have no lease: they count as expired.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
ALTER TABLE spool ADD COLUMN claimed_by TEXT;
ALTER TABLE spool ADD COLUMN lease_until TEXT;

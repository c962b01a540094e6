-- As SQLite's 0022_leases.sql: the daemon (node) holding a row's claim, and until when (ISO-8601
-- text, like every other time here). On PostgreSQL the claims also skip rows another daemon's
-- open transaction has locked (FOR UPDATE SKIP LOCKED in the store's claim statements).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
ALTER TABLE spool ADD COLUMN claimed_by TEXT;
ALTER TABLE spool ADD COLUMN lease_until TEXT;

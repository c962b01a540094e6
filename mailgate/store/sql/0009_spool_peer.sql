-- The address of the SMTP/LMTP peer that handed a mail over: only a configured trusted peer's
-- Authentication-Results may prove an agent, so the spool must remember who that peer was.
ALTER TABLE spool ADD COLUMN peer TEXT;
